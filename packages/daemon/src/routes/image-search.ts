import { isLoopbackHost } from '@berth/registry';
import type { RegistryAuth } from '@berth/image';
import { parseFilters, type Filters } from '../api/query.js';
import type { Router } from '../api/router.js';
import { DaemonError, InvalidParameterError } from '../errors.js';
import type { DaemonServices } from './context.js';
import { registryAuth } from './images.js';

/**
 * `GET /images/search` as moby does it (registry/search.go): the registry v1 search API of the
 * index the term names — Docker Hub's index for a bare term (`busybox`, `library/busybox`), the
 * host itself for `host:port/term` — then moby's filters (`is-official`, `stars`; the deprecated
 * `is-automated=true` matches nothing). A registry that speaks only v2 has no search; that is a
 * clear error, and an index that does not answer fails within a short timeout rather than hang.
 */

/** Docker Hub's index (moby `registry.IndexServer`). */
export const DOCKER_INDEX = 'https://index.docker.io/v1/';
const DEFAULT_LIMIT = 25;
/** Per attempt: an interactive `docker search` should fail fast when the index is away. */
export const SEARCH_TIMEOUT_MS = 10_000;

export interface SearchResult {
  star_count: number;
  is_official: boolean;
  name: string;
  is_automated: boolean;
  description: string;
}

export interface SearchOptions {
  term: string;
  /** 1–100; 0 means moby's default of 25. */
  limit?: number;
  filters?: Filters;
  auth?: RegistryAuth;
  /** Hosts allowed over plain HTTP besides loopback (`--insecure-registry`). */
  insecure?: string[];
  timeoutMs?: number;
  /** Where Docker Hub's index is (tests point it at a local server). */
  officialIndex?: string;
  signal?: AbortSignal;
}

/** moby `splitReposSearchTerm`: the index name and the remote term. */
export function splitSearchTerm(term: string): { index: string; remote: string } {
  const slash = term.indexOf('/');
  if (slash < 0) return { index: 'docker.io', remote: term };
  const first = term.slice(0, slash);
  if (!first.includes('.') && !first.includes(':') && first !== 'localhost') return { index: 'docker.io', remote: term };
  const index = first === 'index.docker.io' || first === 'registry-1.docker.io' ? 'docker.io' : first;
  return { index, remote: term.slice(slash + 1) };
}

function hostName(hostPort: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(hostPort);
  if (m) return m[1]!;
  const colon = hostPort.lastIndexOf(':');
  return colon > 0 && hostPort.indexOf(':') === colon ? hostPort.slice(0, colon) : hostPort;
}

function asResult(value: unknown): SearchResult | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v['name'] !== 'string') return undefined;
  return {
    star_count: typeof v['star_count'] === 'number' ? v['star_count'] : 0,
    is_official: v['is_official'] === true,
    name: v['name'],
    // moby: "is-automated" is deprecated and always reported false.
    is_automated: false,
    description: typeof v['description'] === 'string' ? v['description'] : '',
  };
}

function causeText(error: unknown): string {
  let e: unknown = error;
  let text = error instanceof Error ? error.message : String(error);
  for (let i = 0; i < 4 && e instanceof Error && e.cause !== undefined; i++) {
    e = e.cause;
    if (e instanceof Error && e.message) text = e.message;
  }
  return text;
}

async function getSearch(url: string, auth: RegistryAuth | undefined, timeoutMs: number, signal?: AbortSignal): Promise<Response> {
  const headers: Record<string, string> = { 'X-Docker-Token': 'true', Accept: 'application/json' };
  // moby's v1 authTransport: basic auth when the request asks for a token and a user is known.
  if (auth?.username) headers['Authorization'] = `Basic ${Buffer.from(`${auth.username}:${auth.password ?? ''}`).toString('base64')}`;
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    return await fetch(url, { headers, redirect: 'follow', signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
  } catch (error) {
    if (timeout.aborted) {
      throw new DaemonError('SEARCH_TIMEOUT', 'unavailable', `Get "${url}": no answer within ${timeoutMs / 1000} s`, { cause: error });
    }
    throw new DaemonError('SEARCH_UNREACHABLE', 'unavailable', `Get "${url}": ${causeText(error)}`, { cause: error });
  }
}

/** Searches the index `term` names; throws DaemonErrors whose category gives the HTTP status. */
export async function searchImages(options: SearchOptions): Promise<SearchResult[]> {
  const filters = options.filters ?? parseFilters(null);
  filters.validate(['is-automated', 'is-official', 'stars']);
  const isAutomated = filters.boolean('is-automated') ?? false;
  const isOfficial = filters.boolean('is-official');
  let minStars = 0;
  for (const raw of filters.get('stars')) {
    if (!/^-?\d+$/.test(raw)) throw new InvalidParameterError(`invalid filter 'stars=${raw}'`);
    minStars = Math.max(minStars, Number.parseInt(raw, 10));
  }
  const limit = options.limit === undefined || options.limit === 0 ? DEFAULT_LIMIT : options.limit;
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new InvalidParameterError(`limit ${limit} is outside the range of [1, 100]`);
  const term = options.term;
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(term)) {
    throw new InvalidParameterError(`invalid repository name: repository name (${term}) should not have a scheme`);
  }
  // moby: filtering for is-automated=true is deprecated and matches nothing.
  if (isAutomated) return [];

  const split = splitSearchTerm(term);
  const official = split.index === 'docker.io';
  const remote = official ? split.remote.replace(/^library\//, '') : split.remote;
  const timeoutMs = options.timeoutMs ?? SEARCH_TIMEOUT_MS;
  const query = `search?q=${encodeURIComponent(remote)}&n=${limit}`;
  let res: Response;
  let url: string;
  if (official) {
    url = `${options.officialIndex ?? DOCKER_INDEX}${query}`;
    res = await getSearch(url, options.auth, timeoutMs, options.signal);
  } else {
    const insecure = isLoopbackHost(hostName(split.index)) || (options.insecure ?? []).some((h) => h.toLowerCase() === split.index.toLowerCase());
    url = `https://${split.index}/v1/${query}`;
    try {
      res = await getSearch(url, options.auth, timeoutMs, options.signal);
    } catch (error) {
      // moby: an insecure registry that fails over HTTPS is tried over plain HTTP.
      if (!insecure || (error instanceof DaemonError && error.code === 'SEARCH_TIMEOUT')) throw error;
      url = `http://${split.index}/v1/${query}`;
      res = await getSearch(url, options.auth, timeoutMs, options.signal);
    }
  }
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => undefined);
    if (res.status === 401) throw new DaemonError('SEARCH_UNAUTHORIZED', 'unauthorized', `unauthorized: searching ${split.index} needs credentials (Unexpected status code 401)`);
    if (res.status === 404 && !official) {
      throw new DaemonError(
        'SEARCH_UNSUPPORTED',
        'internal',
        `Unexpected status code 404: the registry ${split.index} does not serve the v1 search API (GET /v1/search); registries that speak only the v2 API cannot be searched`,
      );
    }
    throw new DaemonError('SEARCH_FAILED', 'internal', `Unexpected status code ${res.status}`);
  }
  let body: unknown;
  try {
    body = JSON.parse(await res.text());
  } catch (cause) {
    throw new DaemonError('SEARCH_DECODE', 'internal', `error decoding registry search results: ${(cause as Error).message}`, { cause });
  }
  const rawResults = body !== null && typeof body === 'object' ? (body as { results?: unknown }).results : undefined;
  if (!Array.isArray(rawResults)) throw new DaemonError('SEARCH_DECODE', 'internal', 'error decoding registry search results: no results array');
  const out: SearchResult[] = [];
  for (const raw of rawResults) {
    const r = asResult(raw);
    if (!r) continue;
    if (isOfficial !== undefined && r.is_official !== isOfficial) continue;
    if (r.star_count < minStars) continue;
    out.push(r);
  }
  // The index is asked for `limit` results; one that sends more is cut to what was asked.
  return out.slice(0, limit);
}

export function registerImageSearchRoute(router: Router, s: DaemonServices): void {
  router.add('GET', '/images/search', async (ctx) => {
    const rawLimit = ctx.query.get('limit');
    let limit = 0;
    if (rawLimit !== null && rawLimit !== '') {
      if (!/^-?\d+$/.test(rawLimit.trim())) throw new InvalidParameterError(`invalid limit: strconv.Atoi: parsing "${rawLimit}": invalid syntax`);
      limit = Number.parseInt(rawLimit, 10);
    }
    const abort = new AbortController();
    const onClose = (): void => abort.abort();
    ctx.connection.once('close', onClose);
    try {
      const auth = registryAuth(ctx);
      const results = await searchImages({
        term: ctx.query.get('term') ?? '',
        limit,
        filters: parseFilters(ctx.query.get('filters')),
        ...(auth ? { auth } : {}),
        insecure: s.info.insecureRegistries,
        signal: abort.signal,
      });
      ctx.sendJson(200, results);
    } finally {
      ctx.connection.off('close', onClose);
    }
  });
}
