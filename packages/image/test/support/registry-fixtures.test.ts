import { createHash, randomBytes } from 'node:crypto';
import { createServer, get } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { startProxy } from './registry-fixtures.js';

const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('startProxy (test registry proxy)', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('throttles a blob to a slow reader with one drain listener at a time, bytes intact', { timeout: 60_000 }, async () => {
    const body = randomBytes(24 * 1024 * 1024);
    const upstream: Server = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(body.length) });
      res.end(body);
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          upstream.closeAllConnections();
          upstream.close(() => r());
        }),
    );
    const proxy = await startProxy(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
    cleanups.push(() => proxy.close());
    // Fast enough to finish quickly, slow enough that the throttle wakes the upstream many
    // times while the reader below holds the proxy's response back.
    proxy.setRate(64 * 1024 * 1024);

    let mostDrainListeners = 0;
    let drainWaits = 0;
    proxy.server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
      res.on('newListener', (event: string | symbol) => {
        if (event !== 'drain') return;
        drainWaits += 1;
        mostDrainListeners = Math.max(mostDrainListeners, res.listenerCount('drain') + 1);
      });
    });

    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      get(`http://${proxy.host}/v2/x/blobs/sha256:${digest(body)}`, resolve).on('error', reject);
    });
    expect(res.statusCode).toBe(200);
    // A slow reader: nothing for a while (the proxy's response backs up), then small sips.
    res.pause();
    await delay(1500);
    const hash = createHash('sha256');
    let total = 0;
    let chunks = 0;
    for await (const chunk of res) {
      hash.update(chunk as Buffer);
      total += (chunk as Buffer).length;
      chunks += 1;
      if (chunks % 16 === 0) await delay(5);
    }
    expect(total).toBe(body.length);
    expect(hash.digest('hex')).toBe(digest(body));
    expect(proxy.log.at(-1)?.bytes).toBe(body.length);
    // The reader did hold the proxy back (else this test proves nothing), and it never had
    // more than one wake-up waiting for the same drain.
    expect(drainWaits).toBeGreaterThan(0);
    expect(mostDrainListeners).toBeLessThanOrEqual(1);
  });
});
