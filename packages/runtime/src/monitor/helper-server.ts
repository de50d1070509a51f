import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { RuntimeUnavailableError } from '../errors.js';

/** One answer of `berth-io serve`: the operation's exit code and its text (message or output). */
export interface HelperReply {
  code: number;
  text: string;
}

const escape = (field: string): string => field.replace(/[\\\t\n]/g, (c) => (c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\\\'));
const unescape = (field: string): string => field.replace(/\\(.)/g, (_m, c: string) => (c === 't' ? '\t' : c === 'n' ? '\n' : c));

/**
 * A long-lived `berth-io serve` process that mounts, unmounts and launches the monitor on the
 * runtime's behalf. Node forks its whole process for every child it spawns — milliseconds of
 * page-table copying for a daemon of 150 MB, with the event loop blocked meanwhile — while the
 * helper is a small static binary whose forks cost next to nothing. Requests are answered in any
 * order (a launch waits for runc; a mount does not wait for it). The process is started on the
 * first request, started again after it died, and ended by `close()`; it holds the event loop
 * only while requests are pending.
 */
export class HelperServer {
  private child: ChildProcess | undefined;
  /** Requests awaiting their answer, with the helper process they were sent to. */
  private readonly pending = new Map<number, { child: ChildProcess; resolve: (r: HelperReply) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private buffered = '';

  constructor(private readonly helperPath: string) {}

  /** Sends one request (the operation's name and its fields); resolves with the helper's answer. */
  request(fields: readonly string[]): Promise<HelperReply> {
    const child = this.child ?? this.start();
    const id = this.nextId++;
    return new Promise<HelperReply>((resolve, reject) => {
      this.pending.set(id, { child, resolve, reject });
      this.hold(true);
      child.stdin?.write(`${[String(id), ...fields].map(escape).join('\t')}\n`);
    });
  }

  /** Ends the helper (it exits at EOF on its stdin); requests in flight still get their answers. */
  close(): void {
    this.child?.stdin?.end();
    this.child = undefined;
  }

  private start(): ChildProcess {
    const child = spawn(this.helperPath, ['serve'], { stdio: ['pipe', 'pipe', 'ignore'], env: {} });
    this.child = child;
    this.buffered = '';
    child.stdin?.on('error', () => undefined);
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => this.receive(chunk));
    // Only this process's requests fail with it: after close(), a new process may already be
    // serving requests while the old one finishes its last answers and exits.
    const fail = (error: Error): void => {
      if (this.child === child) this.child = undefined;
      for (const [id, p] of this.pending) {
        if (p.child !== child) continue;
        this.pending.delete(id);
        p.reject(error);
      }
    };
    child.once('error', (cause) => fail(new RuntimeUnavailableError(`berth-io serve failed: ${cause.message}`, { cause })));
    // 'close', not 'exit': launch workers outlive the server briefly and still answer.
    child.once('close', (code, signal) => fail(new RuntimeUnavailableError(`berth-io serve exited (${signal ?? code ?? 'unknown'})`)));
    this.hold(this.pending.size > 0);
    return child;
  }

  private receive(chunk: string): void {
    this.buffered += chunk;
    for (let nl = this.buffered.indexOf('\n'); nl >= 0; nl = this.buffered.indexOf('\n')) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      const [id = '', code = '', text = ''] = line.split('\t');
      const p = this.pending.get(Number(id));
      if (!p) continue;
      this.pending.delete(Number(id));
      p.resolve({ code: Number(code), text: unescape(text) });
    }
    this.hold(this.pending.size > 0);
  }

  /** Keeps the event loop alive while answers are awaited, and only then. */
  private hold(pending: boolean): void {
    const child = this.child;
    if (!child) return;
    const out = child.stdout as Socket | null;
    if (pending) {
      child.ref();
      out?.ref();
    } else {
      child.unref();
      out?.unref();
      (child.stdin as Socket | null)?.unref();
    }
  }
}
