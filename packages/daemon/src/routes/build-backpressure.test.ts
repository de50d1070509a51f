/**
 * `POST /build` against a client that stops reading: a RUN step that prints a lot must block on
 * its pipe (as under Docker) rather than berthd queueing its output for that client; once the
 * client reads again it gets every line in order and the build finishes.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../../../../test/support/privileged.js';
import { chunkedBody, countAttachOutput, readToEnd, settled, stalledClient, usePrivateDaemon } from '../../../../test/support/stalled-client.js';

const run = promisify(execFile);
const LINES = 60_000;
const PAD = 'x'.repeat(90);

describePrivileged('build output to a client that stops reading', () => {
  const d = usePrivateDaemon('build-bp');
  let ctxDir = '';

  beforeAll(async () => {
    ctxDir = await mkdtemp(join(tmpdir(), 'berth-build-bp-ctx-'));
  });

  afterAll(async () => {
    if (ctxDir) await rm(ctxDir, { recursive: true, force: true });
  });

  it('a RUN step stops being read while the client is stalled, then every line arrives in order', async () => {
    const daemon = d;
    await writeFile(join(ctxDir, 'Dockerfile'), `FROM busybox\nRUN i=0; while [ $i -lt ${LINES} ]; do echo "line-$i-${PAD}"; i=$((i+1)); done; echo END\n`);
    const { stdout: context } = await run('tar', ['-C', ctxDir, '-cf', '-', 'Dockerfile'], { encoding: 'buffer' });

    // Count what the build's executor takes from the step's stdout (the real one, passed through).
    const counted = countAttachOutput(daemon.daemon.services.runtime);
    const client = await stalledClient(
      daemon.socketPath,
      `POST /v1.44/build?t=bp-test:1&rm=1 HTTP/1.1\r\nHost: berth\r\nContent-Type: application/x-tar\r\nContent-Length: ${context.length}\r\nConnection: close\r\n\r\n`,
      context,
    );
    try {
      const whilePaused = await settled(counted.taken);
      const total = LINES * (`line-0-${PAD}\n`.length + 4);
      // Pipes, socket buffers and high-water marks hold a few hundred KB; the output is ~6 MB.
      expect(whilePaused, `the build took ${whilePaused} of ~${total} output bytes for a client that reads nothing`).toBeLessThan(1024 * 1024);

      const raw = await readToEnd(client);
      const messages = chunkedBody(raw)
        .toString()
        .split('\r\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { stream?: string; error?: string });
      expect(messages.filter((m) => m.error)).toEqual([]);
      const lines = messages
        .map((m) => m.stream ?? '')
        .join('')
        .split('\n')
        .filter((l) => l.startsWith('line-') || l === 'END');
      expect(lines).toHaveLength(LINES + 1);
      expect(lines.every((l, i) => (i === LINES ? l === 'END' : l === `line-${i}-${PAD}`)), 'the build output differs from what the step printed').toBe(true);
      expect(messages.some((m) => m.stream?.startsWith('Successfully tagged bp-test:1'))).toBe(true);
    } finally {
      client.destroy();
      counted.restore();
    }
  }, 180_000);
});
