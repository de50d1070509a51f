import type { IpamConfig } from '@berth/client';
import type { Cli, Opts } from '../context.js';
import { list } from '../context.js';
import { renderList, renderObject } from '../format/list.js';
import { shortId } from '../format/human.js';
import { confirm, forEachArg, parseFilters } from './shared.js';

export async function ls(cli: Cli, _args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const networks = await client.networks.list({ filters: parseFilters(opts.filter) });
  networks.sort((a, b) => a.Name.localeCompare(b.Name));
  const trunc = opts.trunc !== false;
  const rows = networks.map((n) => ({
    ID: trunc ? shortId(n.Id) : n.Id,
    Name: n.Name,
    Driver: n.Driver,
    Scope: n.Scope,
    IPv6: String(n.EnableIPv6),
    Internal: String(n.Internal),
    CreatedAt: n.Created,
    Labels: Object.entries(n.Labels ?? {}).map(([k, v]) => `${k}=${v}`).join(','),
  }));
  cli.out(renderList(rows, { format: opts.format as string | undefined, quiet: Boolean(opts.quiet), defaultTable: 'table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}', headers: { ID: 'NETWORK ID', Name: 'NAME', Driver: 'DRIVER', Scope: 'SCOPE', IPv6: 'IPV6', Internal: 'INTERNAL', CreatedAt: 'CREATED AT', Labels: 'LABELS' } }));
  return 0;
}

export async function create(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const subnets = list(opts.subnet);
  const gateways = list(opts.gateway);
  const ranges = list(opts.ipRange);
  const config: IpamConfig[] = subnets.map((Subnet, i) => ({ Subnet, ...(gateways[i] ? { Gateway: gateways[i] } : {}), ...(ranges[i] ? { IPRange: ranges[i] } : {}) }));
  const labels = Object.fromEntries(list(opts.label).map((l) => [l.split('=')[0]!, l.split('=').slice(1).join('=')]));
  const options = Object.fromEntries(list(opts.opt).map((l) => [l.split('=')[0]!, l.split('=').slice(1).join('=')]));
  const result = await client.networks.create({
    Name: args[0]!,
    Driver: (opts.driver as string) ?? 'bridge',
    Internal: Boolean(opts.internal),
    Attachable: Boolean(opts.attachable),
    EnableIPv6: Boolean(opts.ipv6),
    IPAM: { Driver: 'default', Config: config },
    Options: options,
    Labels: labels,
  });
  if (result.Warning) cli.err(`WARNING: ${result.Warning}\n`);
  cli.out(`${result.Id}\n`);
  return 0;
}

export async function rm(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  return forEachArg(cli, args, async (name) => {
    try {
      await client.networks.inspect(name);
    } catch (error) {
      if (opts.force) return;
      throw error;
    }
    await client.networks.remove(name);
  });
}

export async function inspect(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const found = [];
  for (const name of args) found.push(await client.networks.inspect(name));
  if (opts.format) for (const n of found) cli.out(renderObject(n, String(opts.format)));
  else cli.out(`${JSON.stringify(found, null, 4)}\n`);
  return 0;
}

export async function connect(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  await client.networks.connect(args[0]!, {
    Container: args[1]!,
    EndpointConfig: { Aliases: list(opts.alias).length ? list(opts.alias) : undefined, ...(opts.ip ? { IPAMConfig: { IPv4Address: String(opts.ip) } } : {}) },
  });
  return 0;
}

export async function disconnect(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  await client.networks.disconnect(args[0]!, { Container: args[1]!, Force: Boolean(opts.force) });
  return 0;
}

export async function prune(cli: Cli, _args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  if (!opts.force && !(await confirm(cli, 'WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?'))) return 0;
  const result = await client.networks.prune({ filters: parseFilters(opts.filter) });
  if (result.NetworksDeleted?.length) cli.out(`Deleted Networks:\n${result.NetworksDeleted.join('\n')}\n`);
  return 0;
}
