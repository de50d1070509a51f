import { createReadStream, createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { ImageSummary, ProgressMessage } from '@berth/client';
import type { Cli, Opts } from '../context.js';
import { ExitError, list } from '../context.js';
import { goTime, humanSize, shortId, timeAgo } from '../format/human.js';
import { renderList } from '../format/list.js';
import { ProgressRenderer } from '../format/progress.js';
import { confirm, parseFilters } from './shared.js';

const IMAGE_HEADERS: Record<string, string> = {
  Repository: 'REPOSITORY',
  Tag: 'TAG',
  Digest: 'DIGEST',
  ID: 'IMAGE ID',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  Size: 'SIZE',
  Containers: 'CONTAINERS',
};

/** One row per repo:tag like docker images (untagged images show as <none>). */
export function imageRows(images: ImageSummary[], opts: { trunc: boolean; digests: boolean; now?: number }): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  for (const img of images) {
    const base = {
      ID: opts.trunc ? shortId(img.Id) : img.Id,
      CreatedSince: timeAgo(img.Created, opts.now),
      CreatedAt: goTime(img.Created),
      Size: humanSize(img.Size),
      Containers: img.Containers < 0 ? 'N/A' : String(img.Containers),
    };
    const tags = (img.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
    const digests = (img.RepoDigests ?? []).filter((d) => d !== '<none>@<none>');
    const digestFor = (repo: string): string => digests.find((d) => d.startsWith(`${repo}@`))?.split('@')[1] ?? '<none>';
    if (tags.length === 0) {
      const repo = digests[0]?.split('@')[0] ?? '<none>';
      rows.push({ Repository: repo, Tag: '<none>', Digest: digests[0]?.split('@')[1] ?? '<none>', ...base });
      continue;
    }
    for (const t of tags) {
      const colon = t.lastIndexOf(':');
      const repo = t.slice(0, colon);
      rows.push({ Repository: repo, Tag: t.slice(colon + 1), Digest: digestFor(repo), ...base });
    }
  }
  return rows;
}

export async function images(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const filters = parseFilters(opts.filter) ?? {};
  if (args[0]) filters.reference = [args[0]];
  const list_ = await client.images.list({ all: Boolean(opts.all), filters, digests: Boolean(opts.digests) });
  list_.sort((a, b) => b.Created - a.Created);
  const defaultTable = opts.digests
    ? 'table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}'
    : 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';
  let rows = imageRows(list_, { trunc: opts.trunc !== false, digests: Boolean(opts.digests) });
  if (opts.quiet) rows = rows.filter((r, i, a) => a.findIndex((x) => x.ID === r.ID) === i);
  cli.out(renderList(rows, { format: opts.format as string | undefined, quiet: Boolean(opts.quiet), defaultTable, headers: IMAGE_HEADERS }));
  return 0;
}

async function renderProgress(cli: Cli, messages: AsyncIterable<ProgressMessage>, quiet: boolean): Promise<ProgressMessage[]> {
  const renderer = new ProgressRenderer(cli.stdout, Boolean(cli.stdout.isTTY), cli.stdout.columns ?? 80);
  const seen: ProgressMessage[] = [];
  for await (const message of messages) {
    seen.push(message);
    if (!quiet) renderer.write(message);
  }
  return seen;
}

export async function pull(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const { splitForPull } = await import('@berth/client');
  const ref = args[0]!;
  const { fromImage, tag } = splitForPull(ref);
  if (!opts.quiet && !ref.includes(':') && !ref.includes('@')) cli.out('Using default tag: latest\n');
  try {
    await renderProgress(cli, await client.images.pull(ref, { platform: opts.platform as string | undefined }), Boolean(opts.quiet));
  } catch (error) {
    throw new ExitError(1, `Error response from daemon: ${(error as Error).message}`);
  }
  cli.out(`${fromImage}${tag.startsWith('sha256:') ? '@' : ':'}${tag}\n`);
  return 0;
}

export async function push(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  try {
    await renderProgress(cli, await client.images.push(args[0]!), Boolean(opts.quiet));
  } catch (error) {
    throw new ExitError(1, (error as Error).message);
  }
  if (opts.quiet) cli.out(`${args[0]}\n`);
  return 0;
}

export async function build(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const { createBuildContext } = await import('@berth/client');
  const dir = args[0]!;
  const context = dir === '-' ? cli.stdin : await createBuildContext(dir, { dockerfile: opts.file as string | undefined });
  const buildArgs: Record<string, string> = {};
  for (const a of list(opts.buildArg)) {
    const eq = a.indexOf('=');
    if (eq < 0) {
      if (process.env[a] !== undefined) buildArgs[a] = process.env[a]!;
    } else buildArgs[a.slice(0, eq)] = a.slice(eq + 1);
  }
  const labels: Record<string, string> = {};
  for (const l of list(opts.label)) labels[l.split('=')[0]!] = l.split('=').slice(1).join('=');
  const started = Date.now();
  const tty = Boolean(cli.stdout.isTTY);
  let imageId = '';
  let stepStarted = started;
  let stepLine = '';
  try {
    const messages = await client.images.build(context, {
      tags: list(opts.tag),
      dockerfile: opts.file as string | undefined,
      buildArgs: Object.keys(buildArgs).length ? buildArgs : undefined,
      labels: Object.keys(labels).length ? labels : undefined,
      target: opts.target as string | undefined,
      platform: opts.platform as string | undefined,
      noCache: opts.cache === false,
      pull: Boolean(opts.pull),
      quiet: Boolean(opts.quiet),
      rm: opts.rm !== false,
      forceRm: Boolean(opts.forceRm),
      networkMode: opts.network as string | undefined,
      cacheFrom: list(opts.cacheFrom).length ? list(opts.cacheFrom) : undefined,
    });
    for await (const m of messages) {
      if (typeof m.aux?.ID === 'string') imageId = m.aux.ID;
      if (opts.quiet) {
        // A quiet build may carry the ID only as stream text.
        const id = m.stream?.trim();
        if (!imageId && id && /^sha256:[0-9a-f]{64}$/.test(id)) imageId = id;
        continue;
      }
      if (m.stream !== undefined) {
        // On a terminal each finished step gets its duration, so slow steps stand out.
        if (tty && /^Step \d+\/\d+ :/.test(m.stream)) {
          if (stepLine) cli.out(`\x1b[2m ---> ${stepLine} done in ${((Date.now() - stepStarted) / 1000).toFixed(1)}s\x1b[0m\n`);
          stepStarted = Date.now();
          stepLine = m.stream.split(':')[0]!.trim();
        }
        cli.out(m.stream);
        const built = /Successfully built ([0-9a-f]+)/.exec(m.stream);
        if (built && !imageId) imageId = built[1]!;
      } else if (m.status) {
        cli.out(`${m.id ? `${m.id}: ` : ''}${m.status}\n`);
      }
    }
  } catch (error) {
    throw new ExitError(1, (error as Error).message.endsWith('\n') ? (error as Error).message : `${(error as Error).message}`);
  }
  if (tty && !opts.quiet) cli.out(`\x1b[2mbuilt in ${((Date.now() - started) / 1000).toFixed(1)}s\x1b[0m\n`);
  if (opts.quiet) cli.out(`${imageId}\n`);
  if (opts.iidfile) await writeFile(String(opts.iidfile), imageId);
  return 0;
}

export async function tag(cli: Cli, args: string[]): Promise<number> {
  const client = await cli.client();
  const target = args[1]!;
  const colon = target.lastIndexOf(':');
  const hasTag = colon > target.lastIndexOf('/');
  await client.images.tag(args[0]!, hasTag ? target.slice(0, colon) : target, hasTag ? target.slice(colon + 1) : 'latest');
  return 0;
}

export async function rmi(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  let failed = false;
  for (const name of args) {
    try {
      for (const item of await client.images.remove(name, { force: Boolean(opts.force), noprune: opts.prune === false })) {
        if (item.Untagged) cli.out(`Untagged: ${item.Untagged}\n`);
        if (item.Deleted) cli.out(`Deleted: ${item.Deleted}\n`);
      }
    } catch (error) {
      failed = true;
      const { describeError } = await import('../errors.js');
      cli.err(`${describeError(error, cli.host).message}\n`);
    }
  }
  return failed ? 1 : 0;
}

export async function save(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  if (!opts.output && cli.stdout.isTTY) throw new ExitError(1, 'berth: cowardly refusing to save to a terminal. Use the -o flag or redirect');
  await pipeline(await client.images.save(args), opts.output ? createWriteStream(String(opts.output)) : cli.stdout);
  return 0;
}

export async function load(cli: Cli, _args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const input = opts.input ? createReadStream(String(opts.input)) : cli.stdin;
  if (!opts.input && cli.stdin.isTTY) throw new ExitError(1, 'berth: requested load from stdin, but stdin is empty (use -i FILE or redirect)');
  try {
    // The same display as pull: layer lines redrawn on a terminal, plain status lines when piped.
    // As docker load: not on a terminal, ask the daemon for the quiet form (just "Loaded image: …").
    await renderProgress(cli, await client.images.load(input, { quiet: Boolean(opts.quiet) || !cli.stdout.isTTY }), false);
  } catch (error) {
    throw new ExitError(1, (error as Error).message);
  }
  return 0;
}

export async function importImage(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const file = args[0]!;
  const input = file === '-' ? cli.stdin : createReadStream(file);
  let repo: string | undefined;
  let tag: string | undefined;
  if (args[1]) {
    const colon = args[1].lastIndexOf(':');
    if (colon > args[1].lastIndexOf('/')) {
      repo = args[1].slice(0, colon);
      tag = args[1].slice(colon + 1);
    } else repo = args[1];
  }
  let id = '';
  for await (const m of await client.images.import(input, { repo, tag, message: opts.message as string | undefined, changes: list(opts.change), platform: opts.platform as string | undefined })) {
    if (m.status && /^sha256:/.test(m.status)) id = m.status;
  }
  cli.out(`${id}\n`);
  return 0;
}

export async function history(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const items = await client.images.history(args[0]!);
  const trunc = opts.trunc !== false;
  const human = opts.human !== false;
  const rows = items.map((h) => ({
    ID: h.Id === '<missing>' ? '<missing>' : trunc ? shortId(h.Id) : h.Id,
    CreatedSince: human ? timeAgo(h.Created) : goTime(h.Created),
    CreatedAt: goTime(h.Created),
    CreatedBy: trunc ? (h.CreatedBy.length > 45 ? `${h.CreatedBy.slice(0, 44)}…` : h.CreatedBy) : h.CreatedBy,
    Size: human ? humanSize(h.Size) : String(h.Size),
    Comment: h.Comment,
  }));
  cli.out(
    renderList(rows, {
      format: opts.format as string | undefined,
      quiet: Boolean(opts.quiet),
      defaultTable: 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}',
      headers: { ID: 'IMAGE', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', CreatedBy: 'CREATED BY', Size: 'SIZE', Comment: 'COMMENT' },
    }),
  );
  return 0;
}

export async function prune(cli: Cli, _args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const warning = opts.all ? 'WARNING! This will remove all images without at least one container associated to them.' : 'WARNING! This will remove all dangling images.';
  if (!opts.force && !(await confirm(cli, `${warning}\nAre you sure you want to continue?`))) return 0;
  const filters = parseFilters(opts.filter) ?? {};
  filters.dangling = [opts.all ? 'false' : 'true'];
  const result = await client.images.prune({ filters });
  const deleted = result.ImagesDeleted ?? [];
  if (deleted.length) {
    cli.out('Deleted Images:\n');
    for (const d of deleted) cli.out(d.Untagged ? `untagged: ${d.Untagged}\n` : `deleted: ${d.Deleted}\n`);
    cli.out('\n');
  }
  cli.out(`Total reclaimed space: ${humanSize(result.SpaceReclaimed ?? 0)}\n`);
  return 0;
}
