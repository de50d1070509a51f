import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../../../test/support/privileged.js';
import { ensureHelper } from '../src/monitor/helper.js';
import { HelperServer } from '../src/monitor/helper-server.js';

const mounted = async (target: string): Promise<boolean> =>
  (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').some((l) => l.split(' ')[4] === target);

describePrivileged('berth-io serve: mounts and launches without forking the caller', () => {
  let dir: string;
  let server: HelperServer;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-helper-server-'));
    server = new HelperServer(await ensureHelper(path.join(dir, 'bin')));
  }, 120_000);
  afterAll(async () => {
    server?.close();
    for (const t of ['ro', 'ovl']) {
      const target = path.join(dir, t);
      while (await mounted(target)) await import('node:child_process').then((cp) => cp.execFileSync('umount', ['-l', target]));
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('bind-mounts read-only, overlays with data options, and unmounts what is stacked', async () => {
    const src = path.join(dir, 'src');
    const ro = path.join(dir, 'ro');
    await mkdir(src);
    await mkdir(ro);
    await writeFile(path.join(src, 'f'), 'hello');
    expect(await server.request(['mount', 'bind', src, ro, 'rbind,ro'])).toEqual({ code: 0, text: '' });
    expect(await readFile(path.join(ro, 'f'), 'utf8')).toBe('hello');
    await expect(writeFile(path.join(ro, 'g'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
    // Twice on the same target: umount takes both off.
    expect((await server.request(['mount', 'bind', src, ro, 'bind'])).code).toBe(0);
    expect(await server.request(['umount', ro])).toEqual({ code: 0, text: '2\n' });
    expect(await mounted(ro)).toBe(false);
    expect(await server.request(['umount', ro])).toEqual({ code: 0, text: '0\n' });
    expect(await server.request(['umount', path.join(dir, 'missing')])).toEqual({ code: 0, text: '0\n' });

    const [lower, upper, work, ovl] = ['lower', 'upper', 'work', 'ovl'].map((n) => path.join(dir, n)) as [string, string, string, string];
    for (const d of [lower, upper, work, ovl]) await mkdir(d);
    await writeFile(path.join(lower, 'l'), 'from lower');
    const r = await server.request(['mount', 'overlay', 'overlay', ovl, `lowerdir=${lower},upperdir=${upper},workdir=${work},nosuid`]);
    expect(r).toEqual({ code: 0, text: '' });
    expect(await readFile(path.join(ovl, 'l'), 'utf8')).toBe('from lower');
    await writeFile(path.join(ovl, 'u'), 'to upper');
    expect(await readFile(path.join(upper, 'u'), 'utf8')).toBe('to upper');
    expect((await server.request(['umount', ovl])).code).toBe(0);
    expect(await mounted(ovl)).toBe(false);
  });

  it('reports a failed mount with the kernel\'s reason', async () => {
    const r = await server.request(['mount', 'bind', path.join(dir, 'nowhere'), path.join(dir, 'src'), 'rbind']);
    expect(r.code).toBe(1);
    expect(r.text).toMatch(/No such file or directory/);
  });

  it('launches a program with fd 3 as its sync pipe, answers with its first line, and says when exec fails', async () => {
    const log = path.join(dir, 'launch.log');
    // Field escapes survive the trip: real newlines and a tab (in a comment) in the argument.
    const script = 'printf \'{"data": %s, "env": "%s"}\\n\' "$$" "$GREETING" >&3\npwd >&2 # a\tb\nprintf "a\\tb\\n" >&2';
    const r = await server.request(['launch', dir, log, '1', 'GREETING=hi there', '/bin/sh', '-c', script]);
    expect(r.code).toBe(0);
    const reply = JSON.parse(r.text) as { data: number; env: string };
    expect(reply.data).toBeGreaterThan(1);
    expect(reply.env).toBe('hi there');
    const failed = await server.request(['launch', dir, log, '0', path.join(dir, 'no-such-program')]);
    expect(failed).toEqual({ code: 127, text: '' });
    for (let i = 0; i < 50 && !(await readFile(log, 'utf8')).includes('no-such-program'); i++) await new Promise((res) => setTimeout(res, 20));
    const text = await readFile(log, 'utf8');
    expect(text).toContain(`${dir}\na\tb\n`);
    expect(text).toMatch(/exec .*no-such-program: No such file or directory/);
  });

  it('answers concurrent requests, and starts again after close', async () => {
    const replies = await Promise.all(
      Array.from({ length: 8 }, (_, i) => server.request(['launch', dir, path.join(dir, 'c.log'), '0', '/bin/sh', '-c', `sleep 0.0${8 - i}; echo ${i} >&3`])),
    );
    expect(replies.map((r) => r.text)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
    server.close();
    expect(await server.request(['umount', path.join(dir, 'missing')])).toEqual({ code: 0, text: '0\n' });
  });
});
