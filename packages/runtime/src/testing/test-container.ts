import type { Runtime, ExitStatus, LogEntry } from '../runtime/types.js';
import type { ContainerSpec } from '../spec/types.js';

export interface TestContainerOptions {
  /**
   * Registers the teardown; pass vitest's `onTestFinished` (runs even when the test fails) or
   * `afterEach`/`afterAll`. The container is force-deleted there.
   */
  cleanup: (fn: () => Promise<void>) => void;
  /** Start it (default true). */
  start?: boolean;
}

export interface TestContainer {
  id: string;
  runtime: Runtime;
  /** Waits for the exit and returns it with stdout and stderr as text. */
  result(): Promise<ExitStatus & { stdout: string; stderr: string }>;
  exec(cmd: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  remove(): Promise<void>;
}

/**
 * Runs a container for a test with the library alone (no daemon) and registers its removal with
 * the test framework, so it is gone when the test ends — passed or failed:
 *
 * ```ts
 * const c = await runTestContainer(runtime, { id, rootfs: { path: dir }, config: { Cmd: ['echo', 'hi'] } }, { cleanup: onTestFinished });
 * expect((await c.result()).stdout).toBe('hi\n');
 * ```
 */
export async function runTestContainer(runtime: Runtime, spec: ContainerSpec, options: TestContainerOptions): Promise<TestContainer> {
  let removed = false;
  const remove = async (): Promise<void> => {
    if (removed) return;
    removed = true;
    await runtime.delete(spec.id, { force: true }).catch((e: unknown) => {
      if ((e as { code?: string }).code !== 'NO_SUCH_CONTAINER') throw e;
    });
  };
  options.cleanup(remove);
  await runtime.create(spec);
  if (options.start !== false) await runtime.start(spec.id);
  const collect = async (entries: AsyncIterable<LogEntry>): Promise<{ stdout: string; stderr: string }> => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    for await (const e of entries) (e.stream === 'stdout' ? out : err).push(e.data);
    return { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
  };
  return {
    id: spec.id,
    runtime,
    async result() {
      const exit = await runtime.wait(spec.id);
      return { ...exit, ...(await collect(runtime.logs(spec.id))) };
    },
    async exec(cmd) {
      const s = await runtime.exec(spec.id, { cmd });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      s.stdout.on('data', (d: Buffer) => out.push(d));
      s.stderr.on('data', (d: Buffer) => err.push(d));
      const exitCode = await s.wait();
      return { exitCode, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
    },
    remove,
  };
}
