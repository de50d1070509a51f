import { describe } from 'vitest';

/** True when the tests run as root, which real containers, mounts and namespaces need. */
export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * A describe block for tests that need root (real containers, overlay mounts, namespaces).
 * Not root: the block is skipped and says why; CI runs as root and runs every one of them.
 */
export function describePrivileged(name: string, body: () => void): void {
  if (!isRoot) {
    console.warn(`skipping "${name}": needs root (real containers, mounts and namespaces); CI runs it as root`);
  }
  describe.skipIf(!isRoot)(name, body);
}
