import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveRegistry, type AccessLogEntry, type RunningRegistry, type ServeRegistryOptions } from '@berth/registry';

export interface TestRegistry extends RunningRegistry {
  root: string;
  /** `127.0.0.1:PORT`, the host part of references. */
  host: string;
  logs: AccessLogEntry[];
  stop(): Promise<void>;
}

/** An in-process berth registry on an ephemeral loopback port with a temp root. */
export async function startTestRegistry(options: Partial<ServeRegistryOptions> = {}): Promise<TestRegistry> {
  const root = options.root ?? (await mkdtemp(join(tmpdir(), 'berth-registry-test-')));
  const logs: AccessLogEntry[] = [];
  const running = await serveRegistry({
    addr: '127.0.0.1:0',
    gc: false,
    log: (e) => logs.push(e),
    ...options,
    root,
  });
  return {
    ...running,
    root,
    host: `127.0.0.1:${running.port}`,
    logs,
    async stop() {
      await running.close();
      if (!options.root) await rm(root, { recursive: true, force: true });
    },
  };
}
