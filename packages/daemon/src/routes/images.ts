import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { familiarString, isBerthError, parseReference, tryParseReference } from '@berth/oci-spec';
import type { PullProgress, PushProgress, RegistryAuth } from '@berth/image';
import { drained, type ApiContext } from '../api/context.js';
import { boolValue, boolValueOrDefault, parseFilters } from '../api/query.js';
import type { Router } from '../api/router.js';
import { applyConfigChanges, imageConfigChanges, mergeCommitConfig } from '../api/config-changes.js';
import { validateCommitConfig, validateStringArray, validateStringMap } from '../api/schemas.js';
import { DaemonError, InvalidParameterError, NoSuchImageError } from '../errors.js';
import type { BuildMessage } from '../engine/build.js';
import { parseTimestamp } from '../engine/time.js';
import { withContainerFrozen } from '../engine/archive.js';
import type { DaemonServices } from './context.js';

/** Decodes X-Registry-Auth / X-Registry-Config: base64url or standard base64, padded or not. */
export function decodeAuthHeader(value: string | string[] | undefined): Record<string, unknown> | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (!raw) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(raw, 'base64').toString('utf8')) as unknown;
    return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Build secrets from `X-Berth-Build-Secrets`: base64 (either alphabet) of a JSON object mapping
 * each secret id to its value in base64. A plain header rather than BuildKit's session protocol,
 * so any HTTP client can pass secrets to `RUN --mount=type=secret`.
 */
export function buildSecrets(value: string | string[] | undefined): Record<string, Uint8Array> {
  const raw = Array.isArray(value) ? value[0] : value;
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw, 'base64').toString('utf8'));
  } catch (cause) {
    throw new InvalidParameterError('invalid X-Berth-Build-Secrets header: expected base64 of a JSON object {"id": "<base64 value>"}', { cause });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new InvalidParameterError('invalid X-Berth-Build-Secrets header: expected a JSON object {"id": "<base64 value>"}');
  }
  const secrets: Record<string, Uint8Array> = {};
  for (const [id, v] of Object.entries(parsed)) {
    if (typeof v !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) {
      throw new InvalidParameterError(`invalid X-Berth-Build-Secrets header: the value of secret "${id}" must be a base64 string`);
    }
    secrets[id] = new Uint8Array(Buffer.from(v, 'base64'));
  }
  return secrets;
}

/** Credentials from `X-Registry-Auth`, when the client sent any. */
export function registryAuth(ctx: ApiContext): RegistryAuth | undefined {
  const decoded = decodeAuthHeader(ctx.headers['x-registry-auth']);
  if (!decoded) return undefined;
  const auth: RegistryAuth = {};
  const pick = (k: keyof RegistryAuth): void => {
    const v = decoded[k];
    if (typeof v === 'string' && v !== '') auth[k] = v;
  };
  pick('username');
  pick('password');
  pick('identitytoken');
  pick('registrytoken');
  pick('serveraddress');
  if (!auth.username && typeof decoded['auth'] === 'string' && decoded['auth'] !== '') {
    const plain = Buffer.from(decoded['auth'], 'base64').toString('utf8');
    const colon = plain.indexOf(':');
    if (colon > 0) {
      auth.username = plain.slice(0, colon);
      auth.password = plain.slice(colon + 1);
    }
  }
  return Object.keys(auth).length > 0 ? auth : undefined;
}

/** A JSON message stream (pull/push/build/load): one object per line, flushed as written. */
class JsonMessageStream {
  readonly #out: Writable;
  constructor(out: Writable) {
    this.#out = out;
  }
  write(message: Record<string, unknown>): void {
    if (!this.#out.destroyed && !this.#out.writableEnded) this.#out.write(JSON.stringify(message) + '\r\n');
  }
  /** A promise while the client is behind (the answer holds more than its high-water mark). */
  ready(): Promise<void> | undefined {
    return this.#out.writableNeedDrain && !this.#out.destroyed ? drained(this.#out) : undefined;
  }
  error(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.write({ errorDetail: { message }, error: message });
  }
  end(): void {
    if (!this.#out.destroyed && !this.#out.writableEnded) this.#out.end();
  }
}

function progressBar(current: number, total: number): string {
  if (total <= 0) return '';
  const width = 50;
  const filled = Math.min(width, Math.floor((current / total) * width));
  const human = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}kB` : `${n}B`);
  return `[${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(width - filled)}] ${human(current)}/${human(total)}`;
}

const pullPhaseText: Record<string, string> = {
  waiting: 'Pulling fs layer',
  exists: 'Already exists',
  downloading: 'Downloading',
  verifying: 'Verifying Checksum',
  'download-complete': 'Download complete',
  extracting: 'Extracting',
  'pull-complete': 'Pull complete',
};

const pushPhaseText: Record<string, string> = {
  preparing: 'Preparing',
  pushing: 'Pushing',
  pushed: 'Pushed',
  exists: 'Layer already exists',
};

function imageNotFound(ref: string, error: unknown): unknown {
  if (isBerthError(error) && error.category === 'not-found') {
    const parsed = tryParseReference(ref);
    return new NoSuchImageError(parsed && !/^(sha256:)?[0-9a-f]{12,64}$/.test(ref) ? familiarString(parsed) : ref, { cause: error });
  }
  return error;
}

export function registerImageRoutes(router: Router, s: DaemonServices): void {
  router.add('POST', '/images/create', async (ctx) => {
    const fromImage = ctx.query.get('fromImage');
    const fromSrc = ctx.query.get('fromSrc');
    if (fromSrc !== null) {
      if (fromSrc !== '-') throw new DaemonError('NOT_IMPLEMENTED', 'not-implemented', 'importing from a URL is not supported');
      const repo = ctx.query.get('repo');
      const tag = ctx.query.get('tag');
      const reference = repo ? `${repo}${tag ? `:${tag}` : ''}` : undefined;
      // Validated before the 200 goes out, so a bad change is a plain 400 as in moby.
      const changes = ctx.query.getAll('changes');
      const config = changes.length > 0 ? imageConfigChanges(applyConfigChanges({}, changes)) : undefined;
      const out = new JsonMessageStream(ctx.stream('application/json'));
      try {
        const id = await s.images.import(ctx.req, {
          ...(reference ? { reference } : {}),
          ...(ctx.query.get('message') ? { message: ctx.query.get('message')! } : {}),
          ...(config ? { changes: config } : {}),
        });
        out.write({ status: id });
        s.events.publish('image', 'import', id, reference ? { name: reference } : {});
      } catch (error) {
        out.error(error);
      }
      out.end();
      return;
    }
    if (!fromImage) throw new InvalidParameterError('fromImage or fromSrc is required');
    const tag = ctx.query.get('tag') ?? '';
    let ref = fromImage;
    if (tag !== '') ref = tag.includes(':') ? `${fromImage}@${tag}` : `${fromImage}:${tag}`;
    let parsed;
    try {
      parsed = parseReference(ref);
    } catch (cause) {
      throw new InvalidParameterError(`invalid reference format: ${ref}`, { cause });
    }
    const platform = ctx.query.get('platform') || undefined;
    const out = new JsonMessageStream(ctx.stream('application/json'));
    const shown = parsed.tag ?? parsed.digest ?? 'latest';
    out.write({ status: `Pulling from ${parsed.path}`, id: shown });
    const abort = new AbortController();
    const onClose = (): void => abort.abort();
    ctx.connection.once('close', onClose);
    try {
      const auth = registryAuth(ctx);
      const result = await s.images.pull(ref, {
        ...(platform ? { platform } : {}),
        ...(auth ? { auth } : {}),
        insecure: s.info.insecureRegistries,
        signal: abort.signal,
        onProgress: (event: PullProgress) => {
          if (event.type !== 'layer') return;
          const status = pullPhaseText[event.phase] ?? event.phase;
          const message: Record<string, unknown> = { status, id: event.id };
          if (event.phase === 'downloading' || event.phase === 'extracting') {
            message['progressDetail'] = { current: event.current, total: event.total };
            message['progress'] = progressBar(event.current, event.total);
          } else {
            message['progressDetail'] = {};
          }
          out.write(message);
        },
      });
      out.write({ status: `Digest: ${result.digest}` });
      out.write({
        status: result.upToDate
          ? `Status: Image is up to date for ${familiarString(parsed)}`
          : `Status: Downloaded newer image for ${familiarString(parsed)}`,
      });
      s.events.publish('image', 'pull', result.reference, { name: result.reference });
    } catch (error) {
      out.error(error);
    } finally {
      ctx.connection.off('close', onClose);
    }
    out.end();
  });

  router.add('GET', '/images/json', async (ctx) => {
    const filters = parseFilters(ctx.query.get('filters'));
    filters.validate(['dangling', 'label', 'label!', 'reference', 'before', 'since', 'until']);
    const dangling = filters.boolean('dangling');
    let images = await s.images.list({
      all: boolValue(ctx.query, 'all'),
      ...(dangling !== undefined ? { dangling } : {}),
      ...(filters.has('reference') ? { reference: filters.get('reference') } : {}),
      ...(filters.has('label') ? { labels: filters.get('label') } : {}),
    });
    const created = async (ref: string): Promise<number> => {
      try {
        return Date.parse((await s.images.inspect(ref)).Created) / 1000;
      } catch (error) {
        throw imageNotFound(ref, error);
      }
    };
    for (const ref of filters.get('before')) {
      const t = await created(ref);
      images = images.filter((i) => i.Created < t);
    }
    for (const ref of filters.get('since')) {
      const t = await created(ref);
      images = images.filter((i) => i.Created > t);
    }
    for (const until of filters.get('until')) {
      const ns = parseTimestamp(until);
      if (ns !== undefined) images = images.filter((i) => BigInt(i.Created) * 1_000_000_000n < ns);
    }
    if (filters.has('label')) images = images.filter((i) => filters.matchLabels('label', i.Labels));
    const counts = new Map<string, number>();
    for (const c of s.containers.store.all()) counts.set(c.Image, (counts.get(c.Image) ?? 0) + 1);
    ctx.sendJson(
      200,
      images.map((i) => ({ ...i, Containers: counts.get(i.Id) ?? 0 })),
    );
  });

  router.add('POST', '/images/load', async (ctx) => {
    const quiet = boolValue(ctx.query, 'quiet');
    const out = new JsonMessageStream(ctx.stream('application/json'));
    try {
      const result = await s.images.load(ctx.req, {
        onProgress: (message) => {
          if (!quiet) out.write({ status: message });
        },
      });
      for (const img of result.loaded) {
        out.write({ stream: img.reference ? `Loaded image: ${img.reference}\n` : `Loaded image ID: ${img.id}\n` });
        s.events.publish('image', 'load', img.id, img.reference ? { name: img.reference } : {});
      }
    } catch (error) {
      out.error(error);
    }
    out.end();
  });

  const save = async (ctx: ApiContext, names: string[]): Promise<void> => {
    if (names.length === 0) throw new InvalidParameterError('no image names given');
    for (const name of names) {
      if (!(await s.images.exists(name))) throw new NoSuchImageError(name);
    }
    const tar = await s.images.save(names);
    const out = ctx.stream('application/x-tar');
    await pipeline(tar, out);
    for (const name of names) s.events.publish('image', 'save', name, { name });
  };
  router.add('GET', '/images/get', (ctx) => save(ctx, ctx.query.getAll('names')));

  router.add('POST', '/images/prune', async (ctx) => {
    const filters = parseFilters(ctx.query.get('filters'));
    filters.validate(['dangling', 'until', 'label', 'label!']);
    const dangling = filters.boolean('dangling');
    const result = await s.images.prune({ all: dangling === false });
    s.events.publish('image', 'prune', '', { reclaimed: String(result.spaceReclaimed) });
    ctx.sendJson(200, { ImagesDeleted: result.deleted.length > 0 ? result.deleted : null, SpaceReclaimed: result.spaceReclaimed });
  });

  router.add('GET', '/images/:name*/json', async (ctx) => {
    const name = ctx.param('name');
    try {
      ctx.sendJson(200, await s.images.inspect(name));
    } catch (error) {
      throw imageNotFound(name, error);
    }
  });

  router.add('GET', '/images/:name*/history', async (ctx) => {
    const name = ctx.param('name');
    try {
      ctx.sendJson(200, await s.images.history(name));
    } catch (error) {
      throw imageNotFound(name, error);
    }
  });

  router.add('GET', '/images/:name*/get', (ctx) => save(ctx, [ctx.param('name')]));

  router.add('POST', '/images/:name*/tag', async (ctx) => {
    const name = ctx.param('name');
    const repo = ctx.query.get('repo');
    if (!repo) throw new InvalidParameterError('repository name (repo) must have at least one component');
    const tag = ctx.query.get('tag') || 'latest';
    const target = `${repo}:${tag}`;
    try {
      parseReference(target);
    } catch (cause) {
      throw new InvalidParameterError(`invalid reference format: ${target}`, { cause });
    }
    try {
      await s.images.tag(name, target);
    } catch (error) {
      throw imageNotFound(name, error);
    }
    const inspect = await s.images.inspect(target);
    s.events.publish('image', 'tag', inspect.Id, { name: familiarString(parseReference(target)) });
    ctx.send(201);
  });

  router.add('POST', '/images/:name*/push', async (ctx) => {
    const name = ctx.param('name');
    const tag = ctx.query.get('tag') ?? '';
    const ref = tag === '' ? name : `${name}:${tag}`;
    let parsed;
    try {
      parsed = parseReference(ref);
    } catch (cause) {
      throw new InvalidParameterError(`invalid reference format: ${ref}`, { cause });
    }
    if (!(await s.images.exists(ref))) throw new NoSuchImageError(ref);
    const out = new JsonMessageStream(ctx.stream('application/json'));
    out.write({ status: `The push refers to repository [${parsed.domain}/${parsed.path}]` });
    const abort = new AbortController();
    const onClose = (): void => abort.abort();
    ctx.connection.once('close', onClose);
    try {
      const auth = registryAuth(ctx);
      const result = await s.images.push(ref, {
        ...(auth ? { auth } : {}),
        insecure: s.info.insecureRegistries,
        signal: abort.signal,
        onProgress: (event: PushProgress) => {
          if (event.type !== 'layer') return;
          const message: Record<string, unknown> = { status: pushPhaseText[event.phase] ?? event.phase, id: event.id };
          if (event.phase === 'pushing') {
            message['progressDetail'] = { current: event.current, total: event.total };
            message['progress'] = progressBar(event.current, event.total);
          } else {
            message['progressDetail'] = {};
          }
          out.write(message);
        },
      });
      out.write({ status: `${result.tag}: digest: ${result.digest} size: ${result.size}` });
      out.write({ progressDetail: {}, aux: { Tag: result.tag, Digest: result.digest, Size: result.size } });
      s.events.publish('image', 'push', ref, { name: ref });
    } catch (error) {
      out.error(error);
    } finally {
      ctx.connection.off('close', onClose);
    }
    out.end();
  });

  router.add('DELETE', '/images/:name*', async (ctx) => {
    const name = ctx.param('name');
    const force = boolValue(ctx.query, 'force');
    let result;
    try {
      const inspect = await s.images.inspect(name);
      const users = s.containers.store.all().filter((c) => c.Image === inspect.Id);
      const isId = /^(sha256:)?[0-9a-f]{12,64}$/.test(name);
      const lastName = inspect.RepoTags.length + inspect.RepoDigests.length <= 1;
      if (!force && users.length > 0 && (isId || lastName)) {
        const running = users.find((c) => c.State.Running);
        const user = running ?? users[0]!;
        throw new DaemonError(
          'IMAGE_IN_USE',
          'conflict',
          `conflict: unable to ${isId ? 'delete' : 'remove repository reference'} ${isId ? inspect.Id.slice(7, 19) : `"${name}"`} (must ${running ? 'force' : 'be forced'}) - container ${user.Id.slice(0, 12)} is using its referenced image ${inspect.Id.slice(7, 19)}`,
        );
      }
      result = await s.images.remove(name, { force, noprune: boolValue(ctx.query, 'noprune') });
    } catch (error) {
      throw imageNotFound(name, error);
    }
    for (const item of result) {
      if ('Untagged' in item) s.events.publish('image', 'untag', item.Untagged, { name: item.Untagged });
      else s.events.publish('image', 'delete', item.Deleted, { name: item.Deleted });
    }
    ctx.sendJson(200, result);
  });

  router.add('POST', '/commit', async (ctx) => {
    const container = ctx.query.get('container');
    if (!container) throw new InvalidParameterError('container is required');
    const body = await ctx.json(validateCommitConfig);
    const record = s.containers.store.get(container);
    const repo = ctx.query.get('repo');
    const tag = ctx.query.get('tag');
    const reference = repo ? `${repo}:${tag || 'latest'}` : undefined;
    // moby: the request's config with the changes applied, then whatever it leaves unset taken
    // from the container's config (so the image runs what the container ran).
    const changed = applyConfigChanges(body ?? {}, ctx.query.getAll('changes'));
    const config = mergeCommitConfig(changed, record.Config);
    // moby pauses a running container while its layer is read (`pause`, default true).
    const pause = boolValueOrDefault(ctx.query, 'pause', true);
    const id = await withContainerFrozen(
      record.State.Running && pause,
      record.State.Paused,
      () => s.runtime.pause(record.Id),
      () => s.runtime.unpause(record.Id),
      () =>
        s.images.commit(record.Id, {
          ...(reference ? { reference } : {}),
          ...(ctx.query.get('comment') ? { comment: ctx.query.get('comment')! } : {}),
          ...(ctx.query.get('author') ? { author: ctx.query.get('author')! } : {}),
          changes: imageConfigChanges(config),
        }),
    );
    s.containers.event(record, 'commit');
    ctx.sendJson(201, { Id: id });
  });

  router.add('POST', '/build/prune', async (ctx) => {
    if (!s.builder) throw new DaemonError('NOT_IMPLEMENTED', 'not-implemented', 'the image builder is not available');
    const keep = ctx.query.get('keep-storage') ?? ctx.query.get('reserved-space');
    const keepBytes = keep ? Number.parseInt(keep, 10) : 0;
    if (!Number.isFinite(keepBytes) || keepBytes < 0) throw new InvalidParameterError(`invalid keep-storage: ${keep ?? ''}`);
    const result = await s.builder.prune(keepBytes);
    // The legacy cache has no per-record IDs to list; the count and the bytes are what it knows.
    ctx.sendJson(200, { CachesDeleted: null, SpaceReclaimed: result.reclaimed });
  });

  router.add('POST', '/build', async (ctx) => {
    const builder = s.builder;
    if (!builder) throw new DaemonError('NOT_IMPLEMENTED', 'not-implemented', 'the image builder is not available yet');
    const parseJsonParam = <T>(name: string, validate: (v: unknown) => T, fallback: T): T => {
      const raw = ctx.query.get(name);
      if (!raw) return fallback;
      try {
        return validate(JSON.parse(raw));
      } catch (cause) {
        throw new InvalidParameterError(`invalid ${name}: ${raw}`, { cause });
      }
    };
    const buildArgs = parseJsonParam('buildargs', (v) => validateStringMap(Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== null))), {});
    const labels = parseJsonParam('labels', validateStringMap, {});
    const cacheFrom = parseJsonParam('cachefrom', validateStringArray, []);
    const secrets = buildSecrets(ctx.headers['x-berth-build-secrets']);
    const tags = ctx.query.getAll('t');
    for (const t of tags) {
      try {
        parseReference(t);
      } catch (cause) {
        throw new InvalidParameterError(`invalid tag "${t}": invalid reference format`, { cause });
      }
    }
    const auths = (decodeAuthHeader(ctx.headers['x-registry-config']) ?? {}) as Record<string, { username?: string; password?: string }>;
    const quiet = boolValue(ctx.query, 'q');
    const out = new JsonMessageStream(ctx.stream('application/json'));
    const abort = new AbortController();
    const onClose = (): void => abort.abort();
    ctx.connection.once('close', onClose);
    try {
      const target = ctx.query.get('target');
      const platform = ctx.query.get('platform');
      const networkMode = ctx.query.get('networkmode');
      const result = await builder.build({
        context: ctx.req,
        dockerfile: ctx.query.get('dockerfile') || 'Dockerfile',
        tags,
        buildArgs,
        labels,
        ...(target ? { target } : {}),
        ...(platform ? { platform } : {}),
        ...(networkMode ? { networkMode } : {}),
        noCache: boolValue(ctx.query, 'nocache'),
        cacheFrom,
        secrets,
        pull: boolValue(ctx.query, 'pull'),
        quiet,
        auths,
        signal: abort.signal,
        onMessage: (message: BuildMessage) => {
          if (quiet && 'stream' in message) return;
          out.write(message as Record<string, unknown>);
        },
        outputReady: () => out.ready(),
      });
      out.write({ aux: { ID: result.id } });
      // With q=1 moby's only stream message is the image ID, which the CLI prints.
      if (quiet) out.write({ stream: `${result.id}\n` });
      else {
        out.write({ stream: `Successfully built ${result.id.replace(/^sha256:/, '').slice(0, 12)}\n` });
        for (const t of tags) out.write({ stream: `Successfully tagged ${familiarString(parseReference(t))}\n` });
      }
      for (const t of tags) s.events.publish('image', 'tag', result.id, { name: familiarString(parseReference(t)) });
    } catch (error) {
      out.error(error);
    } finally {
      ctx.connection.off('close', onClose);
    }
    out.end();
  });
}
