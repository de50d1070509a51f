import { API_VERSION, ENGINE_VERSION } from './version.js';

/** Headers moby's version and experimental middlewares put on every response. */
export function responseHeaders(): Record<string, string> {
  return {
    Server: `Berth/${ENGINE_VERSION} (linux)`,
    'Api-Version': API_VERSION,
    Ostype: 'linux',
    'Docker-Experimental': 'false',
  };
}
