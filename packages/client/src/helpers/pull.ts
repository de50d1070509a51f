import type { BerthClient, PullOptions } from '../client.js';
import type { ProgressMessage } from '../types/image.js';

export interface PullResult {
  /** The last status line (`Status: Downloaded newer image for busybox:latest`). */
  status: string;
  /** `sha256:…` from the `Digest:` line, when the daemon sent one. */
  digest?: string;
}

/**
 * Pulls `ref`, calling `onProgress` with every message (per-layer `id`, `status`, `progressDetail`).
 * Resolves with the final status; rejects with StreamError when the daemon reports a failure.
 */
export async function pullImage(client: BerthClient, ref: string, options: PullOptions & { onProgress?: (message: ProgressMessage) => void } = {}): Promise<PullResult> {
  const result: PullResult = { status: '' };
  for await (const message of await client.images.pull(ref, options)) {
    options.onProgress?.(message);
    if (message.status && !message.id) {
      const digest = /^Digest: (\S+)/.exec(message.status);
      if (digest) result.digest = digest[1];
      result.status = message.status;
    }
  }
  return result;
}
