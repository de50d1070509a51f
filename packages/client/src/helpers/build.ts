import type { BerthClient, CallOptions } from '../client.js';
import { StreamError } from '../errors.js';
import type { BuildOptions, ProgressMessage } from '../types/image.js';
import { createBuildContext } from './build-context.js';

export interface BuildResult {
  /** `sha256:…` of the built image (from `aux.ID`, or the `Successfully built` line). */
  imageId: string;
  /** Everything the build printed (the `stream` texts). */
  output: string;
}

/**
 * Builds the directory `dir` (tar with `.dockerignore` applied) and resolves with the image ID.
 * `onProgress` sees every message; a failing step rejects with StreamError carrying the daemon's text.
 */
export async function buildImage(client: BerthClient, dir: string, options: BuildOptions & CallOptions & { onProgress?: (message: ProgressMessage) => void } = {}): Promise<BuildResult> {
  const context = await createBuildContext(dir, { dockerfile: options.dockerfile });
  let imageId = '';
  let output = '';
  for await (const message of await client.images.build(context, options)) {
    options.onProgress?.(message);
    if (message.stream) {
      output += message.stream;
      const built = /Successfully built ([0-9a-f]+)/.exec(message.stream);
      if (built && !imageId) imageId = built[1]!;
    }
    if (typeof message.aux?.ID === 'string') imageId = message.aux.ID;
  }
  if (!imageId) throw new StreamError({ message: `the build of ${dir} finished without an image ID` });
  return { imageId, output };
}
