import { randomBytes } from 'node:crypto';
import type { ExecSession, Runtime } from '@berth/runtime';
import type { ExecCreateBody } from '../api/types.js';
import { ConflictError, NoSuchExecError } from '../errors.js';
import type { ContainerStore } from '../state/container-store.js';
import type { EventBus } from '../state/events.js';

export interface ExecRecord {
  ID: string;
  ContainerID: string;
  Config: ExecCreateBody;
  Running: boolean;
  ExitCode: number | null;
  Pid: number;
  Started: boolean;
  session?: ExecSession;
  /** Resolves when the process has exited and ExitCode is final. */
  done?: Promise<void>;
  createdAt: number;
}

/** Exec instances; kept in memory like moby's, dropped with their container or after an hour. */
export class ExecService {
  readonly #execs = new Map<string, ExecRecord>();
  readonly #store: ContainerStore;
  readonly #runtime: Runtime;
  readonly #events: EventBus;

  constructor(store: ContainerStore, runtime: Runtime, events: EventBus) {
    this.#store = store;
    this.#runtime = runtime;
    this.#events = events;
  }

  create(ref: string, body: ExecCreateBody): ExecRecord {
    const container = this.#store.get(ref);
    if (container.State.Paused) throw new ConflictError(`Container ${container.Id} is paused, unpause the container before exec`);
    if (!container.State.Running || container.State.Restarting) {
      throw new ConflictError(`container ${container.Id} is not running`);
    }
    this.#sweep();
    const exec: ExecRecord = {
      ID: randomBytes(32).toString('hex'),
      ContainerID: container.Id,
      Config: body,
      Running: false,
      ExitCode: null,
      Pid: 0,
      Started: false,
      createdAt: Date.now(),
    };
    this.#execs.set(exec.ID, exec);
    this.#events.publish('container', `exec_create: ${(body.Cmd ?? []).join(' ')}`, container.Id, {
      name: container.Name.slice(1),
      image: container.Config.Image ?? '',
      execID: exec.ID,
    });
    return exec;
  }

  get(id: string): ExecRecord {
    const exec = this.#execs.get(id);
    if (!exec) throw new NoSuchExecError(id);
    return exec;
  }

  /** Starts the process; the caller pipes the session's streams. Throws on a second start. */
  async start(exec: ExecRecord, tty: boolean): Promise<ExecSession> {
    if (exec.Started) throw new ConflictError(`Error: Exec command ${exec.ID} has already run`);
    const container = this.#store.get(exec.ContainerID);
    if (!container.State.Running) throw new ConflictError(`container ${container.Id} is not running`);
    exec.Started = true;
    exec.Running = true;
    const c = exec.Config;
    try {
      const session = await this.#runtime.exec(container.Id, {
        cmd: c.Cmd ?? [],
        ...(c.Env ? { env: c.Env } : {}),
        ...(c.User ? { user: c.User } : {}),
        ...(c.WorkingDir ? { workingDir: c.WorkingDir } : {}),
        tty,
        stdin: c.AttachStdin ?? false,
        privileged: c.Privileged ?? false,
      });
      exec.session = session;
      exec.Pid = session.pid;
      this.#events.publish('container', `exec_start: ${(c.Cmd ?? []).join(' ')}`, container.Id, {
        name: container.Name.slice(1),
        image: container.Config.Image ?? '',
        execID: exec.ID,
      });
      exec.done = session.wait().then(
        (code) => {
          exec.ExitCode = code;
          exec.Running = false;
          this.#events.publish('container', 'exec_die', container.Id, {
            name: container.Name.slice(1),
            image: container.Config.Image ?? '',
            execID: exec.ID,
            exitCode: String(code),
          });
        },
        () => {
          exec.ExitCode = 126;
          exec.Running = false;
        },
      );
      return session;
    } catch (error) {
      const message = (error as Error).message.toLowerCase();
      exec.ExitCode = message.includes('not found') || message.includes('no such file') ? 127 : 126;
      exec.Running = false;
      throw error;
    }
  }

  inspect(exec: ExecRecord): Record<string, unknown> {
    const c = exec.Config;
    const cmd = c.Cmd ?? [];
    return {
      CanRemove: false,
      ContainerID: exec.ContainerID,
      DetachKeys: c.DetachKeys ?? '',
      ExitCode: exec.ExitCode,
      ID: exec.ID,
      OpenStderr: c.AttachStderr ?? false,
      OpenStdin: c.AttachStdin ?? false,
      OpenStdout: c.AttachStdout ?? false,
      ProcessConfig: {
        arguments: cmd.slice(1),
        entrypoint: cmd[0] ?? '',
        privileged: c.Privileged ?? false,
        tty: c.Tty ?? false,
        user: c.User ?? '',
      },
      Running: exec.Running,
      Pid: exec.Pid,
    };
  }

  /** Drops finished execs older than an hour and those of removed containers. */
  #sweep(): void {
    const cutoff = Date.now() - 3600_000;
    for (const [id, exec] of this.#execs) {
      if ((!exec.Running && exec.createdAt < cutoff) || !this.#store.find(exec.ContainerID)) this.#execs.delete(id);
    }
  }
}
