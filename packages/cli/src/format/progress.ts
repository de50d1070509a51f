import type { ProgressMessage } from '@berth/client';
import { humanSize } from './human.js';

export interface ProgressOutput {
  write(text: string): unknown;
}

/**
 * Renders pull/push/load progress messages.
 *
 * On a terminal (`tty`): one line per layer id, rewritten in place with ANSI cursor moves
 * (`<id>: Downloading [=====>     ]  1.2MB/3.4MB`), other messages as their own lines.
 * Piped: plain lines, and no progress-bar updates (as docker prints them), so logs stay readable.
 */
export class ProgressRenderer {
  private readonly lineOf = new Map<string, number>();
  private total = 0;
  private readonly last = new Map<string, string>();

  constructor(
    private readonly out: ProgressOutput,
    private readonly tty: boolean,
    private readonly width = 80,
  ) {}

  write(message: ProgressMessage): void {
    if (message.stream !== undefined) {
      this.out.write(message.stream);
      this.total += (message.stream.match(/\n/g) ?? []).length;
      return;
    }
    if (message.aux !== undefined && message.status === undefined) return;
    if (message.status === undefined) return;
    // Piped, byte-progress updates are not printed (docker prints the status lines only).
    const hasProgress = message.progressDetail !== undefined && (message.progressDetail.total !== undefined || message.progressDetail.current !== undefined);
    if (!this.tty) {
      if (hasProgress) return;
      const line = message.id ? `${message.id}: ${message.status}` : message.status;
      if (message.id && this.last.get(message.id) === line) return;
      if (message.id) this.last.set(message.id, line);
      this.out.write(`${line}\n`);
      return;
    }
    const text = this.format(message);
    if (!message.id) {
      this.out.write(`${text}\n`);
      this.total++;
      return;
    }
    const line = this.lineOf.get(message.id);
    if (line === undefined) {
      this.lineOf.set(message.id, this.total);
      this.out.write(`${text}\n`);
      this.total++;
      return;
    }
    const up = this.total - line;
    // Up to the layer's line, clear it, write, come back down.
    this.out.write(`\x1b[${up}A\r\x1b[2K${text}\r\x1b[${up}B`);
  }

  private format(message: ProgressMessage): string {
    const head = message.id ? `${message.id}: ${message.status}` : (message.status ?? '');
    const detail = message.progressDetail;
    if (detail && detail.total && detail.total > 0 && detail.current !== undefined) {
      return `${head} ${progressBar(detail.current, detail.total, Math.max(10, Math.min(50, this.width - head.length - 25)))}`;
    }
    if (detail && detail.current !== undefined && detail.current > 0) return `${head} ${humanSize(detail.current)}`;
    if (message.progress) return `${head} ${message.progress}`;
    return head;
  }
}

/** `[=====>      ]  1.23MB/4.56MB` */
export function progressBar(current: number, total: number, width = 50): string {
  const ratio = Math.max(0, Math.min(1, current / total));
  const filled = Math.floor(ratio * width);
  const bar = filled >= width ? '='.repeat(width) : `${'='.repeat(filled)}>${' '.repeat(width - filled - 1)}`;
  return `[${bar}] ${humanSize(current).padStart(8)}/${humanSize(total)}`;
}
