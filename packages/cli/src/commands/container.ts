// fs.promises is read on use: importing node:fs/promises loads it (and readline) at start-up.
import { createWriteStream, promises as fsp } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { BerthClient, ContainerSummary, ContainerStats, ContainerUpdateBody, Filters } from '@berth/client';
import { NotFoundError } from '@berth/client';
import type { Cli, Opts } from '../context.js';
import { ExitError, list } from '../context.js';
import { binarySize, goTime, humanSize, parseBytes, shortId, timeAgo } from '../format/human.js';
import { renderList, renderObject } from '../format/list.js';
import { alignTable } from '../format/table.js';
import { confirm, ellipsis, forEachArg, formatPorts, parseFilters } from './shared.js';

export const PS_HEADERS: Record<string, string> = {
  ID: 'CONTAINER ID',
  Image: 'IMAGE',
  Command: 'COMMAND',
  CreatedAt: 'CREATED AT',
  RunningFor: 'CREATED',
  Ports: 'PORTS',
  State: 'STATE',
  Status: 'STATUS',
  Size: 'SIZE',
  Names: 'NAMES',
  Labels: 'LABELS',
  Mounts: 'MOUNTS',
  Networks: 'NETWORKS',
  LocalVolumes: 'LOCAL VOLUMES',
};

/** The object `--format` templates see for one container (docker's containerContext). */
export function containerRow(c: ContainerSummary, opts: { trunc: boolean; now?: number }): Record<string, unknown> {
  const names = c.Names.map((n) => n.replace(/^\//, '')).filter((n) => !n.includes('/'));
  const labels = c.Labels ?? {};
  return {
    ID: opts.trunc ? shortId(c.Id) : c.Id,
    Image: opts.trunc && /^sha256:/.test(c.Image) ? shortId(c.Image) : c.Image,
    // As docker: cut the raw command to 20 characters, then quote it.
    Command: JSON.stringify(opts.trunc ? ellipsis(c.Command, 20) : c.Command),
    CreatedAt: goTime(c.Created),
    RunningFor: timeAgo(c.Created, opts.now),
    Ports: formatPorts(c.Ports),
    State: c.State,
    Status: c.Status,
    Size: c.SizeRw !== undefined || c.SizeRootFs !== undefined ? `${humanSize(c.SizeRw ?? 0)} (virtual ${humanSize(c.SizeRootFs ?? 0)})` : '0B',
    Names: names.join(','),
    Labels: Object.entries(labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
    Label: (name: string) => labels[name] ?? '',
    Mounts: (c.Mounts ?? []).map((m) => (opts.trunc ? ellipsis(m.Name || m.Source, 15) : m.Name || m.Source)).join(','),
    Networks: Object.keys(c.NetworkSettings?.Networks ?? {}).join(','),
    LocalVolumes: String((c.Mounts ?? []).filter((m) => m.Type === 'volume').length),
  };
}

export async function ps(cli: Cli, _args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const last = Number(opts.last ?? -1);
  const limit = opts.latest ? 1 : last > 0 ? last : undefined;
  const containers = await client.containers.list({ all: Boolean(opts.all) || limit !== undefined, limit, size: Boolean(opts.size), filters: parseFilters(opts.filter) });
  const trunc = opts.trunc !== false;
  const now = Date.now();
  let defaultTable = 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}';
  if (opts.size) defaultTable += '\t{{.Size}}';
  cli.out(renderList(containers.map((c) => containerRow(c, { trunc, now })), { format: opts.format as string | undefined, quiet: Boolean(opts.quiet), defaultTable, headers: PS_HEADERS }));
  return 0;
}

export async function stop(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  return forEachArg(cli, args, async (name) => {
    await client.containers.stop(name, { t: opts.time !== undefined ? Number(opts.time) : undefined, signal_: opts.signal as string | undefined });
  });
}

export async function restart(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  return forEachArg(cli, args, async (name) => {
    await client.containers.restart(name, { t: opts.time !== undefined ? Number(opts.time) : undefined, signal_: opts.signal as string | undefined });
  });
}

export async function kill(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  return forEachArg(cli, args, async (name) => {
    await client.containers.kill(name, { signal_: opts.signal as string | undefined });
  });
}

export async function rm(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  return forEachArg(cli, args, async (name) => {
    await client.containers.remove(name, { force: Boolean(opts.force), volumes: Boolean(opts.volumes), link: Boolean(opts.link) });
  });
}

export async function pause(cli: Cli, args: string[]): Promise<number> {
  const client = await cli.client();
  return forEachArg(cli, args, (name) => client.containers.pause(name));
}

export async function unpause(cli: Cli, args: string[]): Promise<number> {
  const client = await cli.client();
  return forEachArg(cli, args, (name) => client.containers.unpause(name));
}

export async function wait(cli: Cli, args: string[]): Promise<number> {
  const client = await cli.client();
  return forEachArg(cli, args, async (name) => String((await client.containers.wait(name)).StatusCode));
}

export async function rename(cli: Cli, args: string[]): Promise<number> {
  const client = await cli.client();
  await client.containers.rename(args[0]!, args[1]!);
  return 0;
}

export async function logs(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const { parseTimestamp } = await import('./shared.js');
  const info = await client.containers.inspect(args[0]!);
  const tail = opts.tail === undefined || opts.tail === 'all' ? 'all' : Number(opts.tail);
  const frames = await client.containers.logs(info.Id, {
    follow: Boolean(opts.follow),
    timestamps: Boolean(opts.timestamps),
    tail: typeof tail === 'number' && tail < 0 ? 'all' : tail,
    since: opts.since ? parseTimestamp(String(opts.since)) : undefined,
    until: opts.until ? parseTimestamp(String(opts.until)) : undefined,
    tty: info.Config.Tty ?? false,
  });
  for await (const frame of frames) {
    const target = frame.stream === 'stderr' ? cli.stderr : cli.stdout;
    if (!target.write(frame.data)) await new Promise((r) => target.once('drain', r));
  }
  return 0;
}

export async function inspect(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const type = opts.type as string | undefined;
  const found: unknown[] = [];
  let failed = false;
  for (const name of args) {
    try {
      found.push(await inspectAny(client, name, type, Boolean(opts.size)));
    } catch (error) {
      failed = true;
      if (error instanceof NotFoundError || (error as { code?: string }).code === 'NO_SUCH_OBJECT') {
        cli.err(`Error: No such ${type ?? 'object'}: ${name}\n`);
      } else throw error;
    }
  }
  if (opts.format) for (const item of found) cli.out(renderObject(item, String(opts.format)));
  else cli.out(`${JSON.stringify(found, null, 4)}\n`);
  return failed ? 1 : 0;
}

async function inspectAny(client: BerthClient, name: string, type: string | undefined, size: boolean): Promise<unknown> {
  const attempts: [string, () => Promise<unknown>][] = [
    ['container', () => client.containers.inspect(name, { size })],
    ['image', () => client.images.inspect(name)],
    ['network', () => client.networks.inspect(name)],
    ['volume', () => client.volumes.inspect(name)],
  ];
  for (const [kind, attempt] of attempts) {
    if (type && type !== kind) continue;
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
    }
  }
  throw Object.assign(new Error(`No such object: ${name}`), { code: 'NO_SUCH_OBJECT' });
}

export async function top(cli: Cli, args: string[]): Promise<number> {
  const client = await cli.client();
  const result = await client.containers.top(args[0]!, { psArgs: args.length > 1 ? args.slice(1).join(' ') : undefined });
  cli.out(alignTable([result.Titles.join('\t'), ...result.Processes.map((p) => p.join('\t'))], 10, 3).map((l) => `${l}\n`).join(''));
  return 0;
}

export async function diff(cli: Cli, args: string[]): Promise<number> {
  const client = await cli.client();
  const changes = (await client.containers.changes(args[0]!)) ?? [];
  for (const c of changes) cli.out(`${['C', 'A', 'D'][c.Kind] ?? '?'} ${c.Path}\n`);
  return 0;
}

export async function port(cli: Cli, args: string[]): Promise<number> {
  const client = await cli.client();
  const info = await client.containers.inspect(args[0]!);
  const ports = info.NetworkSettings?.Ports ?? {};
  let wanted = args[1];
  if (wanted && !wanted.includes('/')) wanted += '/tcp';
  let printed = false;
  for (const [key, bindings] of Object.entries(ports).sort()) {
    if (wanted && key !== wanted) continue;
    for (const b of bindings ?? []) {
      const ip = b.HostIp && b.HostIp.includes(':') ? `[${b.HostIp}]` : b.HostIp || '0.0.0.0';
      cli.out(wanted ? `${ip}:${b.HostPort}\n` : `${key} -> ${ip}:${b.HostPort}\n`);
      printed = true;
    }
  }
  if (wanted && !printed) throw new ExitError(1, `Error: No public port '${wanted}' published for ${args[0]}`);
  return 0;
}

export async function update(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const body: ContainerUpdateBody = {};
  if (opts.cpus) body.NanoCpus = Math.round(Number(opts.cpus) * 1e9);
  if (opts.cpuShares) body.CpuShares = Number(opts.cpuShares);
  if (opts.memory) body.Memory = parseBytes(String(opts.memory));
  if (opts.memorySwap) body.MemorySwap = String(opts.memorySwap) === '-1' ? -1 : parseBytes(String(opts.memorySwap));
  if (opts.pidsLimit) body.PidsLimit = Number(opts.pidsLimit);
  if (opts.restart) {
    const [name, count] = String(opts.restart).split(':');
    body.RestartPolicy = { Name: name as 'no', MaximumRetryCount: count ? Number(count) : 0 };
  }
  return forEachArg(cli, args, async (name) => {
    await client.containers.update(name, body);
  });
}

export async function commit(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  let repo: string | undefined;
  let tag: string | undefined;
  if (args[1]) {
    const ref = args[1];
    const colon = ref.lastIndexOf(':');
    if (colon > ref.lastIndexOf('/')) {
      repo = ref.slice(0, colon);
      tag = ref.slice(colon + 1);
    } else repo = ref;
  }
  const result = await client.containers.commit({
    container: args[0]!,
    repo,
    tag,
    author: opts.author as string | undefined,
    comment: opts.message as string | undefined,
    changes: list(opts.change),
    pause: opts.pause !== false,
  });
  cli.out(`${result.Id}\n`);
  return 0;
}

export async function exportContainer(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  if (!opts.output && cli.stdout.isTTY) throw new ExitError(1, 'berth: cowardly refusing to save to a terminal. Use the -o flag or redirect');
  const tar = await client.containers.export(args[0]!);
  await pipeline(tar, opts.output ? createWriteStream(String(opts.output)) : cli.stdout);
  return 0;
}

export async function prune(cli: Cli, _args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  if (!opts.force && !(await confirm(cli, 'WARNING! This will remove all stopped containers.\nAre you sure you want to continue?'))) return 0;
  const result = await client.containers.prune({ filters: parseFilters(opts.filter) });
  const deleted = result.ContainersDeleted ?? [];
  if (deleted.length) cli.out(`Deleted Containers:\n${deleted.join('\n')}\n\n`);
  cli.out(`Total reclaimed space: ${humanSize(result.SpaceReclaimed ?? 0)}\n`);
  return 0;
}

/** `CONTAINER:PATH` vs a local path, as docker's splitCpArg decides. */
export function splitCpArg(arg: string): { container?: string; path: string } {
  if (arg.startsWith('/') || arg.startsWith('.') || arg === '-') return { path: arg };
  const colon = arg.indexOf(':');
  if (colon <= 0) return { path: arg };
  return { container: arg.slice(0, colon), path: arg.slice(colon + 1) };
}

export async function cp(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const { create: createTar, extract: extractTar } = await import('tar');
  const src = splitCpArg(args[0]!);
  const dest = splitCpArg(args[1]!);
  if (src.container && dest.container) throw new ExitError(1, 'berth: copying between containers is not supported');
  if (!src.container && !dest.container) throw new ExitError(1, 'berth: must specify at least one container source');
  if (src.container) {
    const { tar } = await client.containers.getArchive(src.container, src.path);
    if (dest.path === '-') {
      await pipeline(tar, cli.stdout);
      return 0;
    }
    const target = resolve(dest.path);
    const isDir = await fsp.stat(target).then((s) => s.isDirectory(), () => false);
    if (isDir) {
      await pipeline(tar, extractTar({ cwd: target, preserveOwner: Boolean(opts.archive) }) as unknown as NodeJS.WritableStream);
    } else {
      // Extract beside the target, then give the copied entry the target's name.
      const staging = await fsp.mkdtemp(join(dirname(target), '.berth-cp-'));
      try {
        await pipeline(tar, extractTar({ cwd: staging, preserveOwner: Boolean(opts.archive) }) as unknown as NodeJS.WritableStream);
        await fsp.rename(join(staging, basename(src.path.replace(/\/+$/, '')) || '.'), target);
      } finally {
        await fsp.rm(staging, { recursive: true, force: true });
      }
    }
    return 0;
  }
  const container = dest.container!;
  if (src.path === '-') {
    await client.containers.putArchive(container, dest.path, cli.stdin);
    return 0;
  }
  const source = resolve(src.path);
  await fsp.stat(source).catch(() => {
    throw new ExitError(1, `berth: lstat ${source}: no such file or directory`);
  });
  let targetDir = dest.path;
  let name = basename(source);
  try {
    const st = await client.containers.statPath(container, dest.path);
    // Go's os.ModeDir is bit 31.
    const isDir = (st.mode & 0x80000000) !== 0;
    if (!isDir) {
      targetDir = dirname(dest.path);
      name = basename(dest.path);
    }
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
    if (dest.path.endsWith('/')) throw new ExitError(1, `berth: destination directory ${dest.path} does not exist in ${container}`);
    targetDir = dirname(dest.path);
    name = basename(dest.path);
  }
  let cwd = dirname(source);
  let staging: string | undefined;
  if (name !== basename(source)) {
    staging = await fsp.mkdtemp(join(dirname(source), '.berth-cp-'));
    await fsp.cp(source, join(staging, name), { recursive: true, preserveTimestamps: true });
    cwd = staging;
  }
  try {
    const tar = createTar({ cwd, portable: !opts.archive }, [name]);
    await client.containers.putArchive(container, targetDir, tar as unknown as AsyncIterable<Uint8Array>, { copyUIDGID: Boolean(opts.archive) });
  } finally {
    if (staging) await fsp.rm(staging, { recursive: true, force: true });
  }
  return 0;
}

function cpuPercent(s: ContainerStats): number {
  const cpuDelta = s.cpu_stats.cpu_usage.total_usage - (s.precpu_stats.cpu_usage?.total_usage ?? 0);
  const systemDelta = (s.cpu_stats.system_cpu_usage ?? 0) - (s.precpu_stats.system_cpu_usage ?? 0);
  const cpus = s.cpu_stats.online_cpus ?? s.cpu_stats.cpu_usage.percpu_usage?.length ?? 1;
  return systemDelta > 0 && cpuDelta > 0 ? (cpuDelta / systemDelta) * cpus * 100 : 0;
}

export function statsRow(id: string, name: string, s: ContainerStats, trunc: boolean): Record<string, string> {
  const cache = s.memory_stats.stats?.inactive_file ?? s.memory_stats.stats?.total_inactive_file ?? 0;
  const mem = Math.max(0, (s.memory_stats.usage ?? 0) - cache);
  const limit = s.memory_stats.limit ?? 0;
  let rx = 0;
  let tx = 0;
  for (const n of Object.values(s.networks ?? {})) {
    rx += n.rx_bytes;
    tx += n.tx_bytes;
  }
  let read = 0;
  let write = 0;
  for (const e of s.blkio_stats?.io_service_bytes_recursive ?? []) {
    if (/^read$/i.test(e.op)) read += e.value;
    if (/^write$/i.test(e.op)) write += e.value;
  }
  return {
    ID: trunc ? shortId(id) : id,
    Container: trunc ? shortId(id) : id,
    Name: name.replace(/^\//, ''),
    CPUPerc: `${cpuPercent(s).toFixed(2)}%`,
    MemUsage: `${binarySize(mem)} / ${binarySize(limit)}`,
    MemPerc: `${limit > 0 ? ((mem / limit) * 100).toFixed(2) : '0.00'}%`,
    NetIO: `${humanSize(rx)} / ${humanSize(tx)}`,
    BlockIO: `${humanSize(read)} / ${humanSize(write)}`,
    PIDs: String(s.pids_stats?.current ?? 0),
  };
}

const STATS_HEADERS = { ID: 'CONTAINER ID', Container: 'CONTAINER', Name: 'NAME', CPUPerc: 'CPU %', MemUsage: 'MEM USAGE / LIMIT', MemPerc: 'MEM %', NetIO: 'NET I/O', BlockIO: 'BLOCK I/O', PIDs: 'PIDS' };

export async function stats(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const filters: Filters | undefined = undefined;
  const targets = args.length
    ? await Promise.all(args.map(async (a) => {
        const i = await client.containers.inspect(a);
        return { id: i.Id, name: i.Name };
      }))
    : (await client.containers.list({ all: Boolean(opts.all), filters })).map((c) => ({ id: c.Id, name: c.Names[0] ?? '' }));
  const format = (opts.format as string | undefined) ?? 'table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}';
  const sample = async (): Promise<string> => {
    const rows = await Promise.all(targets.map(async (t) => statsRow(t.id, t.name, await client.containers.stats(t.id), opts.trunc !== false)));
    return renderList(rows, { format, defaultTable: format, headers: STATS_HEADERS });
  };
  if (opts.stream === false || !cli.stdout.isTTY) {
    cli.out(await sample());
    return 0;
  }
  for (;;) {
    const text = await sample();
    cli.out(`\x1b[2J\x1b[H${text}`);
  }
}
