/**
 * Crash test: the registry process is killed with SIGKILL in the middle of a chunked upload,
 * restarted on the same port and root, and the client resumes the upload from the Range the
 * restarted server reports; the committed blob verifies.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { RegistryClient, StaticCredentials } from '@berth/registry';
import { startRegistryProcess, type RegistryProcess } from './support/process.js';

const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const started: RegistryProcess[] = [];
let dir: string | undefined;
afterAll(async () => {
  for (const p of started) await p.kill('SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('crash during a chunked upload', () => {
  it('kill -9 mid-upload, restart, resume, and the final blob verifies', async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-registry-crash-'));
    const root = join(dir, 'root');
    const first = await startRegistryProcess({ root, quiet: false });
    started.push(first);
    const data = randomBytes(12 * 1024 * 1024);
    const desc = { mediaType: 'application/octet-stream', digest: sha256(data), size: data.length };
    const client = new RegistryClient({ credentials: new StaticCredentials(), backoffMs: 200 });
    const opened: number[] = [];
    let restarting: Promise<RegistryProcess> | undefined;
    let sessionUrl = '';

    const push = client.pushBlob(
      `${first.host}/crash/blob`,
      desc,
      (offset) => {
        opened.push(offset);
        // Slow the source a little so the kill lands while a chunk is in flight.
        const chunks: Buffer[] = [];
        for (let at = offset; at < data.length; at += 256 * 1024) chunks.push(data.subarray(at, Math.min(at + 256 * 1024, data.length)));
        return Readable.from(
          (async function* () {
            for (const c of chunks) {
              await new Promise((r) => setTimeout(r, 5));
              yield c;
            }
          })(),
        );
      },
      {
        chunkSize: 2 * 1024 * 1024,
        onSession: (url) => (sessionUrl = url),
        onProgress: (sent) => {
          if (!restarting && sent >= 5 * 1024 * 1024) {
            restarting = (async () => {
              await first.kill('SIGKILL');
              const second = await startRegistryProcess({ root, addr: `127.0.0.1:${first.port}`, quiet: false });
              started.push(second);
              return second;
            })();
          }
        },
      },
    );
    await push;
    expect(restarting).toBeDefined();
    const second = await restarting!;
    expect(first.child.signalCode ?? 'SIGKILL').toBe('SIGKILL');

    // The client re-opened the source at a non-zero offset the restarted server reported.
    const resumedAt = opened.filter((o) => o > 0);
    expect(resumedAt.length).toBeGreaterThan(0);
    const statusLines = second
      .output()
      .split('\n')
      .filter((l) => l.includes('"method":"GET"') && l.includes('/blobs/uploads/') && l.includes('"status":204'));
    expect(statusLines.length).toBeGreaterThan(0);
    expect(sessionUrl).toContain('/v2/crash/blob/blobs/uploads/');

    const pulled: Buffer[] = [];
    for await (const c of await client.fetchBlob(`${second.host}/crash/blob`, desc)) pulled.push(c as Buffer);
    expect(sha256(Buffer.concat(pulled))).toBe(desc.digest);
  });
});
