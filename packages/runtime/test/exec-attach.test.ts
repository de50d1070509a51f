import type { Readable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../../../test/support/privileged.js';
import { createHarness } from './harness.js';
import type { Harness } from './harness.js';

function gather(s: Readable): () => string {
  let buf = '';
  s.on('data', (d: Buffer) => (buf += d.toString()));
  return () => buf;
}

describePrivileged('runtime: exec and attach', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('execs with env, user, working dir and exit code; and with a TTY that can be resized', async () => {
    const spec = await h.spec(['sleep', '60']);
    await h.runtime.create(spec);
    try {
      await h.runtime.start(spec.id);
      const e = await h.runtime.exec(spec.id, { cmd: ['sh', '-c', 'echo $FOO; id -u; id -G; pwd; echo err >&2; exit 5'], env: ['FOO=bar'], user: 'berth', workingDir: '/tmp' });
      const out = gather(e.stdout);
      const err = gather(e.stderr);
      expect(await e.wait()).toBe(5);
      expect(out()).toBe('bar\n1000\n1000 10 29\n/tmp\n');
      expect(err()).toBe('err\n');

      const t = await h.runtime.exec(spec.id, { cmd: ['sh', '-c', 'sleep 0.5; stty size; tty; exit 3'], tty: true });
      await t.resize({ rows: 30, cols: 100 });
      const tout = gather(t.stdout);
      expect(await t.wait()).toBe(3);
      expect(tout()).toMatch(/^30 100\r\n\/dev\/pts\/\d+\r\n$/);

      const i = await h.runtime.exec(spec.id, { cmd: ['sh', '-c', 'read line; echo "got $line"'], stdin: true });
      const iout = gather(i.stdout);
      i.stdin?.end('hello\n');
      expect(await i.wait()).toBe(0);
      expect(iout()).toBe('got hello\n');
    } finally {
      await h.runtime.delete(spec.id, { force: true });
    }
  });

  it('attaches without a TTY: separate streams, stdin half-close ends the container input', async () => {
    const spec = await h.spec(['sh', '-c', 'cat; echo done >&2'], { openStdin: true, stdinOnce: true });
    await h.runtime.create(spec);
    try {
      const a = await h.runtime.attach(spec.id, { stdin: true, stdout: true, stderr: true });
      const out = gather(a.stdout);
      const err = gather(a.stderr);
      await h.runtime.start(spec.id);
      a.stdin?.write('hello\n');
      a.stdin?.end('world\n');
      const exit = await h.runtime.wait(spec.id);
      await a.closed;
      expect(exit.exitCode).toBe(0);
      expect(out()).toBe('hello\nworld\n');
      expect(err()).toBe('done\n');
    } finally {
      await h.runtime.delete(spec.id, { force: true });
    }
  });

  it('attaches with a TTY and resizes it', async () => {
    const spec = await h.spec(['sh', '-c', 'stty size; read x; echo "got $x"'], { tty: true, openStdin: true });
    await h.runtime.create(spec);
    try {
      await h.runtime.resize(spec.id, { rows: 40, cols: 120 });
      const a = await h.runtime.attach(spec.id, { stdin: true, stdout: true });
      const out = gather(a.stdout);
      await h.runtime.start(spec.id);
      while (!out().includes('40 120')) await new Promise((r) => setTimeout(r, 50));
      a.stdin?.write('hi\n');
      const exit = await h.runtime.wait(spec.id);
      await a.closed;
      expect(exit.exitCode).toBe(0);
      expect(out()).toContain('40 120\r\n');
      expect(out()).toContain('got hi\r\n');
      await expect(h.runtime.resize(spec.id, { rows: 1, cols: 1 })).rejects.toMatchObject({ code: 'INVALID_STATE' });
    } finally {
      await h.runtime.delete(spec.id, { force: true });
    }
  });
});
