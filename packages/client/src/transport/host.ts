import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ClientError } from '../errors.js';

/** Where the daemon listens, resolved from a DOCKER_HOST-style URL. */
export type Endpoint =
  | { kind: 'unix'; socketPath: string }
  | { kind: 'tcp'; host: string; port: number; tls?: TlsOptions };

export interface TlsOptions {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** Verify the daemon's certificate against `ca` (DOCKER_TLS_VERIFY). */
  verify: boolean;
}

/** berthd's default API socket. */
export const DEFAULT_HOST = 'unix:///run/berth/berth.sock';

/**
 * Parses `unix:///path`, `tcp://host:port`, `http://`, `https://`, or a bare `/path` socket.
 * A `tcp://` URL uses TLS when `tls` is given (DOCKER_TLS_VERIFY / DOCKER_CERT_PATH) or the scheme is https.
 * Throws ClientError (invalid) naming the URL when it cannot be used.
 */
export function parseHost(url: string, tls?: TlsOptions): Endpoint {
  if (url.startsWith('/')) return { kind: 'unix', socketPath: url };
  const m = /^([a-z]+):\/\/(.*)$/i.exec(url);
  if (!m) throw new ClientError('INVALID_HOST', 'invalid', `invalid daemon host "${url}": expected unix:///path or tcp://host:port`);
  const scheme = m[1]!.toLowerCase();
  const rest = m[2]!;
  if (scheme === 'unix') {
    if (!rest.startsWith('/')) throw new ClientError('INVALID_HOST', 'invalid', `invalid daemon host "${url}": the socket path must be absolute`);
    return { kind: 'unix', socketPath: rest };
  }
  if (scheme === 'tcp' || scheme === 'http' || scheme === 'https') {
    const hostPort = rest.replace(/\/+$/, '');
    const hm = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostPort);
    if (!hm) throw new ClientError('INVALID_HOST', 'invalid', `invalid daemon host "${url}": expected host:port`);
    const useTls = scheme === 'https' || tls !== undefined;
    const port = hm[2] ? Number(hm[2]) : useTls ? 2376 : 2375;
    const host = hm[1]!.replace(/^\[|\]$/g, '');
    const endpoint: Endpoint = { kind: 'tcp', host, port };
    if (useTls) endpoint.tls = tls ?? { verify: true };
    return endpoint;
  }
  throw new ClientError('INVALID_HOST', 'invalid', `invalid daemon host "${url}": unsupported scheme ${scheme}:// (use unix:// or tcp://)`);
}

export interface HostFromEnv {
  url: string;
  endpoint: Endpoint;
}

/**
 * The daemon address the way docker resolves it, with berth's own variable first:
 * `host` argument, then BERTH_HOST, then DOCKER_HOST, then unix:///run/berth/berth.sock.
 * TLS for tcp:// comes from DOCKER_TLS_VERIFY / DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem;
 * default ~/.docker) — or DOCKER_TLS=1 for TLS without verification.
 */
export function resolveHost(host?: string, env: NodeJS.ProcessEnv = process.env): HostFromEnv {
  const url = host || env.BERTH_HOST || env.DOCKER_HOST || DEFAULT_HOST;
  let tls: TlsOptions | undefined;
  const verify = env.DOCKER_TLS_VERIFY !== undefined && env.DOCKER_TLS_VERIFY !== '' && env.DOCKER_TLS_VERIFY !== '0';
  const wantTls = verify || (env.DOCKER_TLS !== undefined && env.DOCKER_TLS !== '' && env.DOCKER_TLS !== '0');
  if (wantTls && !url.startsWith('unix:') && !url.startsWith('/')) {
    const dir = env.DOCKER_CERT_PATH || join(homedir(), '.docker');
    const read = (name: string): Buffer | undefined => {
      try {
        return readFileSync(join(dir, name));
      } catch (error) {
        if (verify && name === 'ca.pem') {
          throw new ClientError('TLS_CONFIG', 'invalid', `DOCKER_TLS_VERIFY is set but ${join(dir, name)} cannot be read`, { cause: error });
        }
        return undefined;
      }
    };
    tls = { verify };
    const ca = read('ca.pem');
    const cert = read('cert.pem');
    const key = read('key.pem');
    if (ca) tls.ca = ca;
    if (cert) tls.cert = cert;
    if (key) tls.key = key;
  }
  return { url, endpoint: parseHost(url, tls) };
}
