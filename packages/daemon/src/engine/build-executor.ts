import type { BuildExecutor, BuildRunRequest, BuildRunResult } from '@berth/image';
import type { NetworkManager, Runtime } from '@berth/runtime';

/**
 * Runs the builder's RUN steps as containers of @berth/runtime (the executor the builder is
 * given). Each step is a throw-away container: created with the step's rootfs mounts, attached
 * before it starts so no output is lost, waited for, and deleted — nothing survives `run`.
 */
export class RuntimeBuildExecutor implements BuildExecutor {
  readonly #runtime: Runtime;
  readonly #networks: NetworkManager;

  constructor(runtime: Runtime, networks: NetworkManager) {
    this.#runtime = runtime;
    this.#networks = networks;
  }

  async run(request: BuildRunRequest): Promise<BuildRunResult> {
    const id = `build-${request.id}`.slice(0, 64);
    const runtime = this.#runtime;
    let netns: 'host' | 'none' | { path: string } = request.network === 'host' ? 'host' : 'none';
    let networked = false;
    try {
      if (request.network === 'default') {
        const setup = await this.#networks.setupContainer({ containerId: id, networkMode: 'bridge', hostname: request.process.hostname });
        networked = true;
        netns = setup.netns;
      }
      await runtime.create({
        id,
        rootfs: { mounts: request.rootfs },
        config: {
          Entrypoint: request.process.args,
          Cmd: null,
          Env: request.process.env,
          WorkingDir: request.process.cwd,
          User: `${request.process.user.uid}:${request.process.user.gid}`,
        },
        hostConfig: {
          GroupAdd: request.process.user.additionalGids.map(String),
          ...(request.insecure ? { Privileged: true, SecurityOpt: ['seccomp=unconfined'] } : {}),
        },
        netns,
        mounts: request.mounts,
        hostname: request.process.hostname,
      });
      const session = await runtime.attach(id, { stdout: true, stderr: true });
      // A reader of the build output that is behind pauses both pipes: the step blocks on its
      // writes, as under Docker, instead of its output queueing in berthd.
      let waiting = false;
      const onOutput = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
        request.onOutput(stream, chunk);
        const ready = waiting ? undefined : request.outputReady?.();
        if (!ready) return;
        waiting = true;
        session.stdout.pause();
        session.stderr.pause();
        void ready.then(() => {
          waiting = false;
          session.stdout.resume();
          session.stderr.resume();
        });
      };
      session.stdout.on('data', onOutput('stdout'));
      session.stderr.on('data', onOutput('stderr'));
      const onAbort = (): void => void runtime.kill(id, 'SIGKILL').catch(() => undefined);
      request.signal?.addEventListener('abort', onAbort);
      try {
        await runtime.start(id);
        const status = await runtime.wait(id);
        await Promise.race([session.closed, new Promise((r) => setTimeout(r, 2000))]);
        return { exitCode: status.exitCode };
      } finally {
        request.signal?.removeEventListener('abort', onAbort);
      }
    } finally {
      await runtime.delete(id, { force: true }).catch(() => undefined);
      if (networked) await this.#networks.teardownContainer(id).catch(() => undefined);
    }
  }
}
