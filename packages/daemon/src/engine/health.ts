import type { Runtime } from '@berth/runtime';
import type { ContainerRecord, HealthLogEntry } from '../state/container-store.js';

const NS_PER_MS = 1_000_000;
const DEFAULT_INTERVAL_MS = 30_000;
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_RETRIES = 3;
const MAX_LOG_ENTRIES = 5;
const MAX_OUTPUT = 4096;

export interface HealthHooks {
  onChange(status: 'healthy' | 'unhealthy'): Promise<void>;
  onProbe(): Promise<void>;
}

/**
 * Runs a container's HEALTHCHECK by exec, as moby's health monitor does: every Interval (every
 * StartInterval during StartPeriod), with a Timeout; Retries consecutive failures make it
 * unhealthy, one success healthy; failures during the start period do not count.
 */
export class HealthMonitor {
  readonly #record: ContainerRecord;
  readonly #runtime: Runtime;
  readonly #hooks: HealthHooks;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #startedAt = Date.now();

  constructor(record: ContainerRecord, runtime: Runtime, hooks: HealthHooks) {
    this.#record = record;
    this.#runtime = runtime;
    this.#hooks = hooks;
  }

  #command(): string[] | undefined {
    const test = this.#record.Config.Healthcheck?.Test ?? [];
    if (test[0] === 'CMD') return test.slice(1);
    if (test[0] === 'CMD-SHELL') return [...(this.#record.Config.Shell ?? ['/bin/sh', '-c']), test.slice(1).join(' ')];
    return undefined;
  }

  #interval(): number {
    const hc = this.#record.Config.Healthcheck ?? {};
    const startPeriod = (hc.StartPeriod ?? 0) / NS_PER_MS;
    if (startPeriod > 0 && Date.now() - this.#startedAt < startPeriod && (hc.StartInterval ?? 0) > 0) {
      return (hc.StartInterval ?? 0) / NS_PER_MS;
    }
    return (hc.Interval ?? 0) > 0 ? (hc.Interval ?? 0) / NS_PER_MS : DEFAULT_INTERVAL_MS;
  }

  start(): void {
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#probe().finally(() => this.#schedule()), this.#interval());
    this.#timer.unref();
  }

  async #probe(): Promise<void> {
    const cmd = this.#command();
    const health = this.#record.State.Health;
    if (!cmd || !health || this.#stopped) return;
    const hc = this.#record.Config.Healthcheck ?? {};
    const timeoutMs = (hc.Timeout ?? 0) > 0 ? (hc.Timeout ?? 0) / NS_PER_MS : DEFAULT_TIMEOUT_MS;
    const start = new Date();
    let exitCode: number;
    let output = '';
    try {
      const session = await this.#runtime.exec(this.#record.Id, { cmd, tty: false, stdin: false });
      const collect = (chunk: Buffer): void => {
        if (output.length < MAX_OUTPUT) output += chunk.toString('utf8');
      };
      session.stdout.on('data', collect);
      session.stderr.on('data', collect);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<number>((resolve) => {
        timer = setTimeout(() => resolve(-1), timeoutMs);
      });
      exitCode = await Promise.race([session.wait(), timedOut]);
      clearTimeout(timer);
      if (exitCode === -1) output = `Health check exceeded timeout (${timeoutMs / 1000}s)`;
    } catch (error) {
      exitCode = -1;
      output = (error as Error).message;
    }
    if (this.#stopped) return;
    const entry: HealthLogEntry = { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: exitCode, Output: output.slice(0, MAX_OUTPUT) };
    health.Log = [...health.Log, entry].slice(-MAX_LOG_ENTRIES);
    const previous = health.Status;
    if (exitCode === 0) {
      health.FailingStreak = 0;
      health.Status = 'healthy';
    } else {
      const inStartPeriod = Date.now() - this.#startedAt < (hc.StartPeriod ?? 0) / NS_PER_MS;
      if (!inStartPeriod) {
        health.FailingStreak += 1;
        const retries = (hc.Retries ?? 0) > 0 ? (hc.Retries ?? DEFAULT_RETRIES) : DEFAULT_RETRIES;
        if (health.FailingStreak >= retries) health.Status = 'unhealthy';
      }
    }
    if (health.Status !== previous && (health.Status === 'healthy' || health.Status === 'unhealthy')) {
      await this.#hooks.onChange(health.Status);
    } else {
      await this.#hooks.onProbe();
    }
  }
}
