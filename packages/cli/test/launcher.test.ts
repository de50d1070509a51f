import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BERTH_BIN, ensureBuiltCli, runCommand } from './support/cli-bin.js';

// The launcher (dist/bin.cjs) loads dist/berth.cjs with a V8 code cache kept beside it. These
// tests run a copy of the two files in a temporary directory, so the cache they see is their own.
describe('the berth launcher and its code cache', () => {
  let dir: string;
  let bin: string;
  const env = { ...process.env, BERTH_HOST: 'unix:///nonexistent/berth.sock', XDG_CACHE_HOME: '' };

  beforeAll(() => {
    ensureBuiltCli();
    dir = mkdtempSync(join(tmpdir(), 'berth-launcher-'));
    for (const name of ['bin.cjs', 'berth.cjs']) copyFileSync(join(dirname(BERTH_BIN), name), join(dir, name));
    bin = join(dir, 'bin.cjs');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const caches = (): string[] => {
    try {
      return readdirSync(join(dir, '.cache')).filter((n) => n.endsWith('.v8cache'));
    } catch {
      return [];
    }
  };

  it('writes a cache on the first run and reuses it, unchanged, on the next', async () => {
    const first = await runCommand('node', [bin, 'version', '--format', '{{.Client.Version}}'], { env });
    expect(first.stdout).toBe('0.1.0\n');
    const written = caches();
    expect(written).toHaveLength(1);
    expect(written[0]).toContain(process.version);
    const path = join(dir, '.cache', written[0]!);
    const before = statSync(path).mtimeMs;

    const second = await runCommand('node', [bin, 'version', '--format', '{{.Client.Version}}'], { env });
    expect(second).toEqual(first);
    // V8 accepted the cache: the launcher rewrites it only when it is missing or rejected.
    expect(statSync(path).mtimeMs).toBe(before);
  });

  it('behaves the same without the cache, and with a corrupt one', async () => {
    const plain = await runCommand('node', [bin, 'ps'], { env: { ...env, BERTH_NO_CODE_CACHE: '1' } });
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(/Cannot connect to the berth daemon at unix:\/\/\/nonexistent\/berth\.sock/);

    for (const name of caches()) copyFileSync(bin, join(dir, '.cache', name)); // not a V8 cache
    const corrupt = await runCommand('node', [bin, 'ps'], { env });
    expect(corrupt).toEqual(plain);
    const [name] = caches();
    expect(statSync(join(dir, '.cache', name!)).size).not.toBe(statSync(bin).size); // rewritten
  });

  it('removes the caches of other builds when it writes a new one', async () => {
    const stale = join(dir, '.cache', 'berth.cjs.v0.0.0-x64-1-1.v8cache');
    const other = join(dir, '.cache', 'unrelated.txt');
    for (const name of caches()) rmSync(join(dir, '.cache', name));
    writeFileSync(stale, 'an older build');
    writeFileSync(other, 'not ours');
    const res = await runCommand('node', [bin, 'version', '--format', '{{.Client.Version}}'], { env });
    expect(res.stdout).toBe('0.1.0\n');
    expect(caches()).toHaveLength(1);
    expect(caches()[0]).toContain(process.version);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(other)).toBe(true);
  });

  it('is built as ASCII, so the launcher reads it without decoding UTF-8', () => {
    const bundle = readFileSync(join(dir, 'berth.cjs'));
    const at = bundle.findIndex((byte) => byte > 0x7f);
    expect(at === -1 ? '' : bundle.subarray(Math.max(0, at - 60), at + 20).toString('utf8')).toBe('');
  });

  it('keeps import() of external packages working (berth daemon loads @berth/daemon)', async () => {
    // The real dist: @berth/daemon resolves from the cli package's node_modules. The second run
    // comes from the code cache, where V8 keeps no import() hook of its own.
    for (let i = 0; i < 2; i++) {
      const res = await runCommand('node', [BERTH_BIN, 'daemon', '--help'], { env });
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      expect(res.stdout).toMatch(/--data-root/);
    }
  });
});
