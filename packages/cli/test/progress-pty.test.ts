import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BerthClient } from '@berth/client';
import { serveRegistry } from '@berth/registry';
import { dockerdAvailable, importBusybox, startDockerd } from '../../client/test/support/engines.js';
import type { Engine } from '../../client/test/support/engines.js';
import { BERTH_BIN, ensureBuiltCli, runCommand } from './support/cli-bin.js';

const scriptAvailable = spawnSync('sh', ['-c', 'command -v script']).status === 0;
if (!dockerdAvailable || !scriptAvailable) console.warn('skipping the progress display tests: need root, dockerd (Debian docker.io) and script(1)');

/**
 * The live progress display of pull, push and build: under a pseudo-terminal (script(1)) it redraws
 * lines in place; piped it prints plain lines. A real registry (@berth/registry) and a real engine.
 */
describe.skipIf(!dockerdAvailable || !scriptAvailable)('progress display on a terminal and piped', () => {
  let engine: Engine | undefined;
  let registry: Awaited<ReturnType<typeof serveRegistry>> | undefined;
  let dir: string;
  let ref: string;
  let client: BerthClient;

  const env = (): NodeJS.ProcessEnv => ({ ...process.env, BERTH_HOST: engine!.host, TERM: 'xterm', COLUMNS: '100', LINES: '40' });
  /** Runs berth under a pseudo-terminal; returns what the terminal received. */
  const underPty = (args: string[]) => runCommand('script', ['-q', '-e', '-c', [process.execPath, BERTH_BIN, ...args].map((a) => `'${a}'`).join(' '), '/dev/null'], { env: env() });
  const piped = (args: string[]) => runCommand(process.execPath, [BERTH_BIN, ...args], { env: env() });

  beforeAll(async () => {
    ensureBuiltCli();
    dir = await mkdtemp(join(tmpdir(), 'berth-cli-progress-'));
    engine = await startDockerd();
    registry = await serveRegistry({ addr: '127.0.0.1:0', root: join(dir, 'registry'), log: false });
    ref = `127.0.0.1:${registry.port}/berth-progress/busybox:1`;
    client = new BerthClient({ host: engine.host });
    await importBusybox(client, ref);
    for await (const _ of await client.images.push(ref)) {
      // drain
    }
    await client.images.remove(ref);
  }, 180_000);

  afterAll(async () => {
    client?.close();
    await engine?.stop();
    await registry?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('pull on a terminal redraws one line per layer in place', async () => {
    const r = await underPty(['pull', ref]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // Cursor up N, clear the line, rewrite a layer's line.
    expect(r.stdout).toMatch(new RegExp(`${String.fromCharCode(27)}\\[\\d+A\\r${String.fromCharCode(27)}\\[2K[0-9a-f]{12}: `));
    expect(r.stdout).toMatch(/Pull complete/);
    expect(r.stdout).toContain(`${ref}\r\n`);
  });

  it('pull piped prints plain status lines, no escape codes', async () => {
    await client.images.remove(ref);
    const r = await piped(['pull', ref]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('\x1b');
    expect(r.stdout).toMatch(/^1: Pulling from berth-progress\/busybox$/m);
    expect(r.stdout).toMatch(/^[0-9a-f]{12}: Pull complete$/m);
    expect(r.stdout).toMatch(/^Status: Downloaded newer image for /m);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe(ref);
  });

  it('push on a terminal and piped', async () => {
    const tty = await underPty(['push', ref]);
    expect(tty.code, tty.stdout).toBe(0);
    expect(tty.stdout).toMatch(/Layer already exists|Pushed/);
    const plain = await piped(['push', ref]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).not.toContain('\x1b');
    expect(plain.stdout).toMatch(/^The push refers to repository \[/m);
    expect(plain.stdout).toMatch(/digest: sha256:[0-9a-f]{64}/);
  });

  it('build on a terminal shows steps with durations; piped it shows the steps only', async () => {
    const ctx = join(dir, 'ctx');
    await (await import('node:fs/promises')).mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'Dockerfile'), `FROM ${ref}\nRUN echo one > /one\nRUN echo two > /two\n`);
    const tty = await underPty(['build', '-t', 'berth-progress-built:1', ctx]);
    expect(tty.code, tty.stdout).toBe(0);
    expect(tty.stdout).toMatch(/Step 1\/3 : FROM/);
    expect(tty.stdout).toMatch(/Step 1\/3 done in \d+\.\ds/);
    expect(tty.stdout).toMatch(/built in \d+\.\ds/);
    const plain = await piped(['build', '-t', 'berth-progress-built:1', ctx]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).not.toContain('\x1b');
    expect(plain.stdout).toMatch(/Step 3\/3 : RUN echo two/);
    expect(plain.stdout).toMatch(/Using cache/);
    expect(plain.stdout).toMatch(/Successfully tagged berth-progress-built:1/);
    await client.images.remove('berth-progress-built:1', { force: true });
  });
});
