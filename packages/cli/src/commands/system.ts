import type { Cli, Opts } from '../context.js';
import { ExitError } from '../context.js';
import { goTime, humanSize } from '../format/human.js';
import { renderList, renderObject } from '../format/list.js';
import { confirm, parseFilters, parseTimestamp } from './shared.js';

export async function info(cli: Cli, _args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const i = await client.system.info();
  if (opts.format) {
    cli.out(renderObject(i, String(opts.format)));
    return 0;
  }
  const lines = [
    'Client:',
    ` Version:    0.1.0`,
    ` Host:       ${client.host}`,
    '',
    'Server:',
    ` Containers: ${i.Containers}`,
    `  Running: ${i.ContainersRunning}`,
    `  Paused: ${i.ContainersPaused}`,
    `  Stopped: ${i.ContainersStopped}`,
    ` Images: ${i.Images}`,
    ` Server Version: ${i.ServerVersion}`,
    ` Storage Driver: ${i.Driver}`,
    ...(i.DriverStatus ?? []).map(([k, v]) => `  ${k}: ${v}`),
    ` Logging Driver: ${i.LoggingDriver ?? ''}`,
    ` Cgroup Driver: ${i.CgroupDriver ?? ''}`,
    ` Cgroup Version: ${i.CgroupVersion ?? ''}`,
    ` Runtimes: ${Object.keys(i.Runtimes ?? {}).join(' ')}`,
    ` Default Runtime: ${i.DefaultRuntime ?? ''}`,
    ` Security Options:${(i.SecurityOptions ?? []).map((s) => `\n  ${s}`).join('')}`,
    ` Kernel Version: ${i.KernelVersion}`,
    ` Operating System: ${i.OperatingSystem}`,
    ` OSType: ${i.OSType}`,
    ` Architecture: ${i.Architecture}`,
    ` CPUs: ${i.NCPU}`,
    ` Total Memory: ${(i.MemTotal / 1024 ** 3).toFixed(2)}GiB`,
    ` Name: ${i.Name}`,
    ` ID: ${i.ID}`,
    ` Docker Root Dir: ${i.DockerRootDir}`,
    ` Debug Mode: ${i.Debug ?? false}`,
    ` Experimental: ${i.ExperimentalBuild ?? false}`,
    ` Live Restore Enabled: ${i.LiveRestoreEnabled ?? false}`,
  ];
  cli.out(`${lines.join('\n')}\n`);
  for (const w of i.Warnings ?? []) cli.err(`${w}\n`);
  return 0;
}

export async function df(cli: Cli, _args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const d = await client.system.df();
  const images = d.Images ?? [];
  const containers = d.Containers ?? [];
  const volumes = d.Volumes ?? [];
  const activeImages = images.filter((i) => i.Containers > 0).length;
  const imageSize = images.reduce((s, i) => s + i.Size, 0);
  const unusedImages = images.filter((i) => i.Containers <= 0).reduce((s, i) => s + i.Size - (i.SharedSize > 0 ? i.SharedSize : 0), 0);
  const containerSize = containers.reduce((s, c) => s + (c.SizeRw ?? 0), 0);
  const stoppedSize = containers.filter((c) => c.State !== 'running').reduce((s, c) => s + (c.SizeRw ?? 0), 0);
  const volumeSize = volumes.reduce((s, v) => s + Math.max(0, v.UsageData?.Size ?? 0), 0);
  const unusedVolumes = volumes.filter((v) => (v.UsageData?.RefCount ?? 0) === 0).reduce((s, v) => s + Math.max(0, v.UsageData?.Size ?? 0), 0);
  const pct = (part: number, whole: number): string => (whole > 0 ? ` (${Math.round((part / whole) * 100)}%)` : '');
  const cache = d.BuildCache ?? [];
  const cacheSize = cache.reduce((s, b) => s + b.Size, 0);
  const rows = [
    { Type: 'Images', TotalCount: String(images.length), Active: String(activeImages), Size: humanSize(imageSize), Reclaimable: `${humanSize(unusedImages)}${pct(unusedImages, imageSize)}` },
    { Type: 'Containers', TotalCount: String(containers.length), Active: String(containers.filter((c) => c.State === 'running').length), Size: humanSize(containerSize), Reclaimable: `${humanSize(stoppedSize)}${pct(stoppedSize, containerSize)}` },
    { Type: 'Local Volumes', TotalCount: String(volumes.length), Active: String(volumes.filter((v) => (v.UsageData?.RefCount ?? 0) > 0).length), Size: humanSize(volumeSize), Reclaimable: `${humanSize(unusedVolumes)}${pct(unusedVolumes, volumeSize)}` },
    { Type: 'Build Cache', TotalCount: String(cache.length), Active: String(cache.filter((b) => b.InUse).length), Size: humanSize(cacheSize), Reclaimable: humanSize(cache.filter((b) => !b.InUse).reduce((s, b) => s + b.Size, 0)) },
  ];
  cli.out(
    renderList(rows, {
      format: opts.format as string | undefined,
      defaultTable: 'table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}',
      headers: { Type: 'TYPE', TotalCount: 'TOTAL', Active: 'ACTIVE', Size: 'SIZE', Reclaimable: 'RECLAIMABLE' },
    }),
  );
  return 0;
}

export async function prune(cli: Cli, _args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const lines = ['WARNING! This will remove:', '  - all stopped containers', '  - all networks not used by at least one container'];
  if (opts.volumes) lines.push('  - all anonymous volumes not used by at least one container');
  lines.push(opts.all ? '  - all images without at least one container associated to them' : '  - all dangling images');
  if (!opts.force && !(await confirm(cli, `${lines.join('\n')}\n\nAre you sure you want to continue?`))) return 0;
  const filters = parseFilters(opts.filter);
  let reclaimed = 0;
  const c = await client.containers.prune({ filters });
  reclaimed += c.SpaceReclaimed ?? 0;
  if (c.ContainersDeleted?.length) cli.out(`Deleted Containers:\n${c.ContainersDeleted.join('\n')}\n\n`);
  const n = await client.networks.prune({ filters });
  if (n.NetworksDeleted?.length) cli.out(`Deleted Networks:\n${n.NetworksDeleted.join('\n')}\n\n`);
  if (opts.volumes) {
    const v = await client.volumes.prune({ filters });
    reclaimed += v.SpaceReclaimed ?? 0;
    if (v.VolumesDeleted?.length) cli.out(`Deleted Volumes:\n${v.VolumesDeleted.join('\n')}\n\n`);
  }
  const i = await client.images.prune({ filters: { ...filters, dangling: [opts.all ? 'false' : 'true'] } });
  reclaimed += i.SpaceReclaimed ?? 0;
  if (i.ImagesDeleted?.length) cli.out(`Deleted Images:\n${i.ImagesDeleted.map((d) => (d.Untagged ? `untagged: ${d.Untagged}` : `deleted: ${d.Deleted}`)).join('\n')}\n\n`);
  cli.out(`Total reclaimed space: ${humanSize(reclaimed)}\n`);
  return 0;
}

export async function events(cli: Cli, _args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGINT', stop);
  try {
    const stream = await client.system.events({
      since: opts.since ? parseTimestamp(String(opts.since)) : undefined,
      until: opts.until ? parseTimestamp(String(opts.until)) : undefined,
      filters: parseFilters(opts.filter),
      signal: controller.signal,
    });
    for await (const e of stream) {
      if (opts.format) {
        cli.out(renderList([e], { format: String(opts.format), defaultTable: String(opts.format), headers: {} }));
        continue;
      }
      const time = new Date(e.timeNano ? Number(BigInt(e.timeNano) / 1000000n) : e.time * 1000);
      const nanos = e.timeNano ? String(BigInt(e.timeNano) % 1000000000n).padStart(9, '0') : '000000000';
      const stamp = `${goTime(Math.floor(time.getTime() / 1000)).slice(0, 19).replace(' ', 'T')}.${nanos}Z`;
      const attrs = Object.entries(e.Actor.Attributes ?? {})
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k}=${v}`)
        .join(', ');
      cli.out(`${stamp} ${e.Type} ${e.Action} ${e.Actor.ID}${attrs ? ` (${attrs})` : ''}\n`);
    }
  } catch (error) {
    if (!controller.signal.aborted) throw error;
  } finally {
    process.off('SIGINT', stop);
  }
  return 0;
}

async function readPasswordFromStdin(cli: Cli): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of cli.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function prompt(cli: Cli, question: string, hidden: boolean): Promise<string> {
  const { createInterface } = await import('node:readline');
  const rl = createInterface({ input: cli.stdin, output: cli.stderr, terminal: Boolean(cli.stdin.isTTY) });
  if (hidden) {
    (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
      if (s.includes(question)) cli.stderr.write(s);
    };
  }
  try {
    return await new Promise<string>((resolve) => rl.question(question, resolve));
  } finally {
    if (hidden) cli.stderr.write('\n');
    rl.close();
  }
}

export async function login(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const { saveLogin, DOCKER_HUB_AUTH_KEY } = await import('@berth/client');
  const server = args[0] ?? DOCKER_HUB_AUTH_KEY;
  let username = opts.username as string | undefined;
  let password = opts.password as string | undefined;
  if (opts.passwordStdin) {
    if (password) throw new ExitError(1, '--password and --password-stdin are mutually exclusive');
    if (!username) throw new ExitError(1, 'Must provide --username with --password-stdin');
    password = await readPasswordFromStdin(cli);
  }
  if (password && !opts.passwordStdin) cli.err('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
  if (!username) username = await prompt(cli, 'Username: ', false);
  if (!password) password = await prompt(cli, 'Password: ', true);
  if (!username || !password) throw new ExitError(1, 'Error: Cannot perform an interactive login from a non TTY device');
  const result = await client.system.auth({ username, password, serveraddress: server });
  await saveLogin(server, username, password);
  cli.out(`${result.Status || 'Login Succeeded'}\n`);
  return 0;
}

export async function logout(cli: Cli, args: string[]): Promise<number> {
  const { removeLogin, DOCKER_HUB_AUTH_KEY, authKeyFor } = await import('@berth/client');
  const server = args[0] ?? DOCKER_HUB_AUTH_KEY;
  const had = await removeLogin(server);
  cli.out(had ? `Removing login credentials for ${authKeyFor(server)}\n` : `Not logged in to ${authKeyFor(server)}\n`);
  return 0;
}
