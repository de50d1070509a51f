import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BERTH_BIN, ensureBuiltCli, runCommand } from './support/cli-bin.js';
import type { Result } from './support/cli-bin.js';

/** Replaces what differs between two runs of the same step: IDs, times, the client's name. */
export function normalize(text: string): string {
  return text
    .replace(/sha256:[0-9a-f]{64}/g, '<digest>')
    .replace(/\b[0-9a-f]{64}\b/g, '<id>')
    .replace(/\b[0-9a-f]{12}\b/g, '<short-id>')
    .replace(/\b(About an?|Less than a|\d+) (seconds?|minutes?|hours?|second|minute|hour)( ago)?/g, '<time>$3')
    .replace(/\d{4}-\d\d-\d\d[T ][\d:.]+(Z| \+0000 UTC)?/g, '<timestamp>')
    .replace(/\bberth\b/g, 'docker')
    // Column widths follow the longest cell, and names differ in length between the two runs.
    .replace(/ {2,}/g, '   ');
}

type Check = 'exact' | 'code' | ((berth: Result, docker: Result) => void);

interface Step {
  name: string;
  args: (v: Vars) => string[];
  input?: string;
  check?: Check;
  /** The exit code both must give (besides being equal). */
  expectCode?: number;
}

interface Vars {
  image: string;
  name: string;
  dir: string;
  suffix: string;
}

/**
 * The same sequence of commands through `berth` and through the real docker CLI, both against the
 * same engine; each step must give the same exit code and equivalent output.
 */
export function scenarioSuite(getHost: () => string, getImage: () => string, options: { expectCodes?: boolean } = {}): void {
  // Against dockerd the expected exit codes are known; against berthd the test asserts what the issue
  // asks — the two CLIs agree — and each daemon gap shows as the same failure through both.
  const expectCodes = options.expectCodes ?? true;
  let dir: string;
  const env = (): NodeJS.ProcessEnv => ({ ...process.env, DOCKER_HOST: getHost(), BERTH_HOST: getHost(), DOCKER_CONFIG: join(dir, 'docker-config'), DOCKER_BUILDKIT: '0', DOCKER_CLI_HINTS: 'false', NO_COLOR: '1' });
  const tag = `s${process.pid}${Math.random().toString(36).slice(2, 6)}`;

  beforeAll(async () => {
    ensureBuiltCli();
    dir = await mkdtemp(join(tmpdir(), 'berth-cli-scenario-'));
    await writeFile(join(dir, 'hello.txt'), 'copied\n');
  });
  afterAll(async () => {
    for (const who of ['berth', 'docker']) {
      const n = `${tag}-${who}`;
      await runCommand('docker', ['rm', '-f', `${n}-a`, `${n}-b`, `${n}-c`], { env: env() });
      await runCommand('docker', ['rmi', '-f', `${n}-img:1`, `${n}-tag:1`, `${n}-built:1`], { env: env() });
      await runCommand('docker', ['volume', 'rm', '-f', `${n}-vol`], { env: env() });
      await runCommand('docker', ['network', 'rm', `${n}-net`], { env: env() });
    }
    await rm(dir, { recursive: true, force: true });
  });

  const steps: Step[] = [
    { name: 'run --rm echo', args: (v) => ['run', '--rm', '--network', 'none', v.image, 'echo', 'hello'], check: 'exact', expectCode: 0 },
    { name: 'run with stdout, stderr and exit code', args: (v) => ['run', '--network', 'none', '--name', `${v.name}-a`, v.image, 'sh', '-c', 'echo out; sleep 0.3; echo err >&2; exit 3'], check: 'exact', expectCode: 3 },
    { name: 'run -i with stdin', args: (v) => ['run', '--rm', '-i', '--network', 'none', v.image, 'sh', '-c', 'cat; echo end'], input: 'piped\n', check: 'exact', expectCode: 0 },
    { name: 'ps --filter --format', args: (v) => ['ps', '-a', '--filter', `name=${v.name}-a`, '--format', '{{.Names}} {{.State}} {{.Command}}'], check: 'exact', expectCode: 0 },
    { name: 'ps table form', args: (v) => ['ps', '-a', '--filter', `name=${v.name}-a`, '--format', 'table {{.Names}}\t{{.Image}}'], check: 'exact', expectCode: 0 },
    { name: 'ps -q', args: (v) => ['ps', '-aq', '--filter', `name=${v.name}-a`], check: 'exact', expectCode: 0 },
    { name: 'logs', args: (v) => ['logs', `${v.name}-a`], check: 'exact', expectCode: 0 },
    { name: 'logs --tail', args: (v) => ['logs', '--tail', '1', `${v.name}-a`], check: 'exact', expectCode: 0 },
    { name: 'inspect -f', args: (v) => ['inspect', '-f', '{{.State.ExitCode}} {{json .Config.Cmd}}', `${v.name}-a`], check: 'exact', expectCode: 0 },
    { name: 'container inspect (grouped form)', args: (v) => ['container', 'inspect', '--format', '{{.Name}}', `${v.name}-a`], check: 'exact', expectCode: 0 },
    { name: 'start -a', args: (v) => ['start', '-a', `${v.name}-a`], check: 'exact', expectCode: 3 },
    { name: 'rm', args: (v) => ['rm', `${v.name}-a`], check: 'exact', expectCode: 0 },
    { name: 'run -d', args: (v) => ['run', '-d', '--network', 'none', '--name', `${v.name}-b`, v.image, 'sleep', '300'], check: 'exact', expectCode: 0 },
    { name: 'exec output', args: (v) => ['exec', `${v.name}-b`, 'sh', '-c', 'echo in-exec; echo e >&2'], check: 'exact', expectCode: 0 },
    { name: 'exec exit code', args: (v) => ['exec', `${v.name}-b`, 'sh', '-c', 'exit 4'], check: 'exact', expectCode: 4 },
    { name: 'exec -i stdin', args: (v) => ['exec', '-i', `${v.name}-b`, 'tr', 'a-z', 'A-Z'], input: 'shout\n', check: 'exact', expectCode: 0 },
    { name: 'exec missing binary', args: (v) => ['exec', `${v.name}-b`, '/no/such'], check: 'exact', expectCode: 126 },
    { name: 'top', args: (v) => ['top', `${v.name}-b`], check: (b, d) => { expect(b.stdout).toMatch(/sleep 300/); expect(d.stdout).toMatch(/sleep 300/); expect(b.stdout.split('\n')[0]).toMatch(/^UID\s+PID\s+PPID/); }, expectCode: 0 },
    { name: 'pause', args: (v) => ['pause', `${v.name}-b`], check: 'exact', expectCode: 0 },
    { name: 'ps status paused', args: (v) => ['ps', '--filter', `name=${v.name}-b`, '--format', '{{.State}}'], check: 'exact', expectCode: 0 },
    { name: 'unpause', args: (v) => ['unpause', `${v.name}-b`], check: 'exact', expectCode: 0 },
    { name: 'cp into the container', args: (v) => ['cp', join(v.dir, 'hello.txt'), `${v.name}-b:/tmp/in.txt`], check: 'code', expectCode: 0 },
    { name: 'exec reads the copied file', args: (v) => ['exec', `${v.name}-b`, 'cat', '/tmp/in.txt'], check: 'exact', expectCode: 0 },
    { name: 'cp out of the container to stdout (tar)', args: (v) => ['cp', `${v.name}-b:/tmp/in.txt`, '-'], check: (b, d) => { expect(b.stdout).toContain('copied\n'); expect(d.stdout).toContain('copied\n'); }, expectCode: 0 },
    { name: 'diff', args: (v) => ['diff', `${v.name}-b`], check: 'exact', expectCode: 0 },
    { name: 'port (none published)', args: (v) => ['port', `${v.name}-b`], check: 'exact', expectCode: 0 },
    { name: 'update', args: (v) => ['update', '--restart', 'no', `${v.name}-b`], check: 'exact', expectCode: 0 },
    { name: 'rename', args: (v) => ['rename', `${v.name}-b`, `${v.name}-c`], check: 'exact', expectCode: 0 },
    { name: 'stop', args: (v) => ['stop', '-t', '1', `${v.name}-c`], check: 'exact', expectCode: 0 },
    { name: 'wait', args: (v) => ['wait', `${v.name}-c`], check: 'exact', expectCode: 0 },
    { name: 'restart', args: (v) => ['restart', '-t', '1', `${v.name}-c`], check: 'exact', expectCode: 0 },
    { name: 'kill', args: (v) => ['kill', `${v.name}-c`], check: 'exact', expectCode: 0 },
    { name: 'kill a stopped container fails', args: (v) => ['kill', `${v.name}-c`], check: (b, d) => { expect(normalize(b.stderr)).toContain('is not running'); expect(d.stderr).toContain('is not running'); }, expectCode: 1 },
    { name: 'commit', args: (v) => ['commit', '-c', 'CMD ["cat","/tmp/in.txt"]', `${v.name}-c`, `${v.name}-img:1`], check: 'exact', expectCode: 0 },
    { name: 'run the committed image', args: (v) => ['run', '--rm', '--network', 'none', `${v.name}-img:1`], check: 'exact', expectCode: 0 },
    { name: 'export -o', args: (v) => ['export', '-o', join(v.dir, `${v.suffix}-export.tar`), `${v.name}-c`], check: 'exact', expectCode: 0 },
    { name: 'rm -f', args: (v) => ['rm', '-f', `${v.name}-c`], check: 'exact', expectCode: 0 },
    { name: 'images --filter --format', args: (v) => ['images', '--filter', `reference=${v.name}-img`, '--format', '{{.Repository}}:{{.Tag}}'], check: 'exact', expectCode: 0 },
    { name: 'image ls (grouped form)', args: (v) => ['image', 'ls', '--filter', `reference=${v.name}-img`, '--format', 'table {{.Repository}}\t{{.Tag}}'], check: 'exact', expectCode: 0 },
    { name: 'tag', args: (v) => ['tag', `${v.name}-img:1`, `${v.name}-tag:1`], check: 'exact', expectCode: 0 },
    { name: 'history -q', args: (v) => ['history', '-q', `${v.name}-img:1`], check: 'exact', expectCode: 0 },
    { name: 'rmi a tag', args: (v) => ['rmi', `${v.name}-tag:1`], check: 'exact', expectCode: 0 },
    { name: 'save -o', args: (v) => ['save', '-o', join(v.dir, `${v.suffix}-save.tar`), `${v.name}-img:1`], check: 'exact', expectCode: 0 },
    { name: 'load -i', args: (v) => ['load', '-i', join(v.dir, `${v.suffix}-save.tar`)], check: 'exact', expectCode: 0 },
    { name: 'build -q', args: (v) => ['build', '-q', '-t', `${v.name}-built:1`, join(v.dir, 'ctx')], check: (b, d) => { expect(b.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/); expect(d.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/); }, expectCode: 0 },
    { name: 'run the built image', args: (v) => ['run', '--rm', '--network', 'none', `${v.name}-built:1`], check: 'exact', expectCode: 0 },
    { name: 'rmi', args: (v) => ['rmi', `${v.name}-img:1`, `${v.name}-built:1`], check: (b, d) => { expect(b.stdout).toMatch(/^Untagged: /m); expect(d.stdout).toMatch(/^Untagged: /m); }, expectCode: 0 },
    { name: 'volume create', args: (v) => ['volume', 'create', `${v.name}-vol`], check: 'exact', expectCode: 0 },
    { name: 'volume ls', args: (v) => ['volume', 'ls', '--filter', `name=${v.name}-vol`], check: 'exact', expectCode: 0 },
    { name: 'volume inspect', args: (v) => ['volume', 'inspect', '-f', '{{.Name}} {{.Driver}}', `${v.name}-vol`], check: 'exact', expectCode: 0 },
    { name: 'volume rm', args: (v) => ['volume', 'rm', `${v.name}-vol`], check: 'exact', expectCode: 0 },
    { name: 'network create', args: (v) => ['network', 'create', '--internal', `${v.name}-net`], check: 'exact', expectCode: 0 },
    { name: 'network ls', args: (v) => ['network', 'ls', '--filter', `name=${v.name}-net`, '--format', '{{.Name}} {{.Driver}} {{.Scope}}'], check: 'exact', expectCode: 0 },
    { name: 'network inspect', args: (v) => ['network', 'inspect', '-f', '{{.Name}} {{.Internal}}', `${v.name}-net`], check: 'exact', expectCode: 0 },
    { name: 'network rm', args: (v) => ['network', 'rm', `${v.name}-net`], check: 'exact', expectCode: 0 },
    { name: 'info --format', args: () => ['info', '--format', '{{.OSType}} {{.Architecture}}'], check: 'exact', expectCode: 0 },
    { name: 'version --format', args: () => ['version', '--format', '{{.Server.Os}}/{{.Server.Arch}}'], check: 'exact', expectCode: 0 },
    { name: 'system df', args: () => ['system', 'df', '--format', '{{.Type}}'], check: 'exact', expectCode: 0 },
    { name: 'events for a time window', args: () => ['events', '--since', '1', '--until', '2'], check: 'exact', expectCode: 0 },
    { name: 'run a missing binary: 127', args: (v) => ['run', '--rm', '--network', 'none', v.image, '/no/such/binary'], check: 'code', expectCode: 127 },
    { name: 'run a missing image that cannot be pulled: 125', args: () => ['run', '--rm', '--network', 'none', 'localhost:1/nosuch/image:1'], check: (b, d) => { expect(b.stderr).toMatch(/Unable to find image/); expect(d.stderr).toMatch(/Unable to find image/); expect(b.stderr).toMatch(/image store/); }, expectCode: 125 },
    { name: 'inspect a missing object', args: () => ['inspect', `nosuch-${tag}`], check: (b, d) => { expect(b.stderr).toContain(`No such object: nosuch-${tag}`); expect(d.stderr).toContain(`No such object: nosuch-${tag}`); }, expectCode: 1 },
    { name: 'rm a missing container', args: () => ['rm', `nosuch-${tag}`], check: (b, d) => { expect(b.stderr).toContain(`No such container: nosuch-${tag}`); expect(d.stderr).toContain(`No such container: nosuch-${tag}`); }, expectCode: 1 },
    { name: 'bad flag: usage error 125', args: () => ['ps', '--bogus'], check: (b, d) => { expect(b.stderr).toMatch(/unknown option '--bogus'|unknown flag: --bogus/); expect(d.stderr).toMatch(/unknown flag: --bogus/); expect(b.stderr).toContain('ps --help'); }, expectCode: 125 },
  ];

  it('builds a context for the build steps', async () => {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(dir, 'ctx'), { recursive: true });
    await writeFile(join(dir, 'ctx', 'Dockerfile'), `FROM ${getImage()}\nRUN echo built > /built\nCMD ["cat", "/built"]\n`);
    expect(await readFile(join(dir, 'ctx', 'Dockerfile'), 'utf8')).toContain('FROM');
  });

  for (const step of steps) {
    it(`${step.name}: same exit code and output`, async () => {
      const results: Record<'berth' | 'docker', Result> = {} as Record<'berth' | 'docker', Result>;
      for (const who of ['berth', 'docker'] as const) {
        const vars: Vars = { image: getImage(), name: `${tag}-${who}`, dir, suffix: who };
        const args = step.args(vars);
        results[who] = who === 'berth' ? await runCommand(process.execPath, [BERTH_BIN, ...args], { env: env(), input: step.input }) : await runCommand('docker', args, { env: env(), input: step.input });
      }
      const { berth, docker } = results;
      const context = `berth: ${JSON.stringify(berth)}\ndocker: ${JSON.stringify(docker)}`;
      expect(berth.code, context).toBe(docker.code);
      if (expectCodes && step.expectCode !== undefined) expect(berth.code, context).toBe(step.expectCode);
      const check = step.check ?? 'code';
      if (!expectCodes && berth.code !== 0 && berth.code !== step.expectCode) {
        // Both failed the same way (a daemon gap, when no exit code is expected): the wording around
        // the daemon's message differs between the CLIs; both must say something, and the same stdout.
        expect(berth.stderr.trim(), context).not.toBe('');
        expect(docker.stderr.trim(), context).not.toBe('');
        expect(normalize(berth.stdout.replaceAll(`${tag}-berth`, '<name>')), context).toBe(normalize(docker.stdout.replaceAll(`${tag}-docker`, '<name>')));
        return;
      }
      if (check === 'exact') {
        const strip = (r: Result, who: string): string => normalize(r.stdout.replaceAll(`${tag}-${who}`, '<name>'));
        expect(strip(berth, 'berth'), context).toBe(strip(docker, 'docker'));
        expect(strip({ ...berth, stdout: berth.stderr }, 'berth'), context).toBe(strip({ ...docker, stdout: docker.stderr }, 'docker'));
      } else if (typeof check === 'function') check(berth, docker);
    });
  }
}
