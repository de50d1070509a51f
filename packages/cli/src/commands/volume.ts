import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { NotFoundError } from '@berth/client';
import type { BerthClient } from '@berth/client';
import type { Cli, Opts } from '../context.js';
import { ExitError, list } from '../context.js';
import { humanSize } from '../format/human.js';
import { renderList, renderObject } from '../format/list.js';
import { confirm, forEachArg, parseFilters } from './shared.js';

export async function ls(cli: Cli, _args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const result = await client.volumes.list({ filters: parseFilters(opts.filter) });
  const volumes = (result.Volumes ?? []).sort((a, b) => a.Name.localeCompare(b.Name));
  const rows = volumes.map((v) => ({
    Name: v.Name,
    Driver: v.Driver,
    Scope: v.Scope,
    Mountpoint: v.Mountpoint,
    Labels: Object.entries(v.Labels ?? {}).map(([k, val]) => `${k}=${val}`).join(','),
    Size: v.UsageData && v.UsageData.Size >= 0 ? humanSize(v.UsageData.Size) : 'N/A',
  }));
  cli.out(renderList(rows, { format: opts.format as string | undefined, quiet: Boolean(opts.quiet), quietField: 'Name', defaultTable: 'table {{.Driver}}\t{{.Name}}', headers: { Name: 'VOLUME NAME', Driver: 'DRIVER', Scope: 'SCOPE', Mountpoint: 'MOUNTPOINT', Labels: 'LABELS', Size: 'SIZE' } }));
  for (const w of result.Warnings ?? []) cli.err(`WARNING: ${w}\n`);
  return 0;
}

export async function create(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const labels = Object.fromEntries(list(opts.label).map((l) => [l.split('=')[0]!, l.split('=').slice(1).join('=')]));
  const driverOpts = Object.fromEntries(list(opts.opt).map((l) => [l.split('=')[0]!, l.split('=').slice(1).join('=')]));
  const v = await client.volumes.create({ Name: args[0], Driver: (opts.driver as string) ?? 'local', Labels: labels, DriverOpts: driverOpts });
  cli.out(`${v.Name}\n`);
  return 0;
}

export async function inspect(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const found = [];
  for (const name of args) found.push(await client.volumes.inspect(name));
  if (opts.format) for (const v of found) cli.out(renderObject(v, String(opts.format)));
  else cli.out(`${JSON.stringify(found, null, 4)}\n`);
  return 0;
}

export async function rm(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  return forEachArg(cli, args, (name) => client.volumes.remove(name, { force: Boolean(opts.force) }));
}

export async function prune(cli: Cli, _args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  if (!opts.force && !(await confirm(cli, 'WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?'))) return 0;
  const filters = parseFilters(opts.filter) ?? {};
  if (opts.all) filters.all = ['true'];
  const result = await client.volumes.prune({ filters });
  if (result.VolumesDeleted?.length) cli.out(`Deleted Volumes:\n${result.VolumesDeleted.join('\n')}\n\n`);
  cli.out(`Total reclaimed space: ${humanSize(result.SpaceReclaimed ?? 0)}\n`);
  return 0;
}

/**
 * A created (never started) helper container with the volume mounted at /volume: the archive
 * endpoints then read or fill the volume. Removed afterwards, whatever happens.
 */
async function withVolumeContainer<T>(client: BerthClient, volume: string, image: string, fn: (id: string) => Promise<T>): Promise<T> {
  let id: string;
  try {
    ({ Id: id } = await client.containers.create({ Image: image, Cmd: ['true'], HostConfig: { Binds: [`${volume}:/volume`], NetworkMode: 'none' }, Labels: { 'berth.volume-helper': volume } }));
  } catch (error) {
    if (error instanceof NotFoundError && /no such image/i.test(error.message)) {
      throw new ExitError(1, `berth: the helper image ${image} is not in the daemon's image store; pass --image with an image you have (berth images)`);
    }
    throw error;
  }
  try {
    return await fn(id);
  } finally {
    await client.containers.remove(id, { force: true }).catch(() => undefined);
  }
}

export async function exportVolume(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const name = args[0]!;
  await client.volumes.inspect(name);
  if (!opts.output && cli.stdout.isTTY) throw new ExitError(1, 'berth: cowardly refusing to write a tar archive to a terminal. Use the -o flag or redirect');
  await withVolumeContainer(client, name, String(opts.image ?? 'busybox'), async (id) => {
    // `/volume/.` makes the archive hold the volume's contents, not a top-level "volume" directory.
    const { tar } = await client.containers.getArchive(id, '/volume/.');
    await pipeline(tar, opts.output ? createWriteStream(String(opts.output)) : cli.stdout);
  });
  return 0;
}

export async function importVolume(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const name = args[0]!;
  try {
    await client.volumes.inspect(name);
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
    await client.volumes.create({ Name: name });
  }
  const input = args[1] && args[1] !== '-' ? createReadStream(args[1]) : cli.stdin;
  await withVolumeContainer(client, name, String(opts.image ?? 'busybox'), (id) => client.containers.putArchive(id, '/volume', input));
  return 0;
}
