import type { Readable } from 'node:stream';
import {
  isBerthError,
  isIndexMediaType,
  parseReference,
  type Descriptor,
  type ImageIndex,
  type Platform,
  type Reference,
} from '@berth/oci-spec';
import { RegistryClient, StaticCredentials, type Credential } from '@berth/registry';
import type { RegistryAuth } from '@berth/image';
import type { Router } from '../api/router.js';
import { DaemonError, InvalidParameterError } from '../errors.js';
import type { DaemonServices } from './context.js';
import { registryAuth } from './images.js';

/** What `GET /distribution/{name}/json` answers (moby `registry.DistributionInspect`). */
export interface DistributionInspect {
  Descriptor: { mediaType: string; digest: string; size: number };
  Platforms: Platform[] | null;
}

/** An image config is read only for its platform fields; a bigger one is not an image config. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

async function readBounded(stream: Readable, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      stream.destroy();
      throw new DaemonError('CONFIG_TOO_LARGE', 'invalid', `${what} is larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function platformOf(p: Partial<Platform> | undefined): Platform | undefined {
  if (!p || (!p.os && !p.architecture)) return undefined;
  const out: Platform = { architecture: p.architecture ?? '', os: p.os ?? '' };
  if (p['os.version']) out['os.version'] = p['os.version'];
  if (p['os.features'] && p['os.features'].length > 0) out['os.features'] = p['os.features'];
  if (p.variant) out.variant = p.variant;
  return out;
}

function credentialsFor(ref: Reference, auth: RegistryAuth | undefined): StaticCredentials {
  if (!auth) return new StaticCredentials({});
  const cred: Credential = {};
  if (auth.username) cred.username = auth.username;
  if (auth.password) cred.password = auth.password;
  if (auth.identitytoken) cred.identityToken = auth.identitytoken;
  if (auth.registrytoken) cred.registryToken = auth.registrytoken;
  return new StaticCredentials({ [ref.domain]: cred });
}

/**
 * Resolves a reference against its registry the way moby's distribution router does: the
 * descriptor of what the tag (or digest) names, and the platforms it offers — every entry of an
 * index or manifest list, or the one platform of an image's config.
 */
export async function inspectDistribution(
  name: string,
  options: { auth?: RegistryAuth; insecure?: string[]; signal?: AbortSignal } = {},
): Promise<DistributionInspect> {
  if (/^(sha256:)?[a-f0-9]{64}$/.test(name)) throw new InvalidParameterError('no manifest found for full image ID');
  let ref: Reference;
  try {
    ref = parseReference(name);
  } catch (cause) {
    throw new InvalidParameterError(`invalid reference format: ${name}`, { cause });
  }
  const client = new RegistryClient({
    insecure: options.insecure ?? [],
    credentials: credentialsFor(ref, options.auth),
    // An inspect is interactive: one retry, not the pull's patience.
    maxAttempts: 2,
  });
  const request = options.signal ? { signal: options.signal } : {};
  try {
    return await describe(client, ref, request);
  } catch (error) {
    // The registry client's message names the URL; say first what moby's clients print.
    if (isBerthError(error) && error.category === 'unauthorized') {
      throw new DaemonError('UNAUTHORIZED', 'unauthorized', `unauthorized: authentication required for ${name} (${error.message})`, { cause: error });
    }
    if (isBerthError(error) && error.category === 'forbidden') {
      throw new DaemonError('DENIED', 'forbidden', `denied: requested access to ${name} is denied (${error.message})`, { cause: error });
    }
    throw error;
  }
}

async function describe(client: RegistryClient, ref: Reference, request: { signal?: AbortSignal }): Promise<DistributionInspect> {
  const { descriptor, manifest } = await client.getManifest(ref, request);
  let platforms: Platform[] = [];
  if (isIndexMediaType(descriptor.mediaType)) {
    for (const entry of (manifest as ImageIndex).manifests ?? []) {
      const p = platformOf(entry.platform);
      if (p) platforms.push(p);
    }
  } else {
    const config = (manifest as { config?: Descriptor }).config;
    if (config) {
      const bytes = await readBounded(await client.fetchBlob(ref, config, request), MAX_CONFIG_BYTES, `image config ${config.digest}`);
      try {
        const p = platformOf(JSON.parse(bytes.toString('utf8')) as Partial<Platform>);
        if (p) platforms = [p];
      } catch {
        // moby ignores a config it cannot decode: no platform to report.
      }
    }
  }
  return {
    Descriptor: { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size },
    Platforms: platforms.length > 0 ? platforms : null,
  };
}

export function registerDistributionRoutes(router: Router, s: DaemonServices): void {
  router.add('GET', '/distribution/:name*/json', async (ctx) => {
    const abort = new AbortController();
    const onClose = (): void => abort.abort();
    ctx.connection.once('close', onClose);
    try {
      const auth = registryAuth(ctx);
      const result = await inspectDistribution(ctx.param('name'), {
        ...(auth ? { auth } : {}),
        insecure: s.info.insecureRegistries,
        signal: abort.signal,
      });
      ctx.sendJson(200, result);
    } finally {
      ctx.connection.off('close', onClose);
    }
  });
}
