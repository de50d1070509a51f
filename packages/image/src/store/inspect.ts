import { familiarString, parseReference } from '@berth/oci-spec';
import type { ImageConfig } from '@berth/oci-spec';
import type { ImageContainerConfig, ImageHistoryEntry, ImageInspect, ImageSummary } from '../service/types.js';
import type { ImageContext } from './context.js';
import { readJson } from './context.js';
import type { ImageRecord } from './image-store.js';

const EPOCH = '0001-01-01T00:00:00Z';

function familiar(full: string): string {
  return familiarString(parseReference(full));
}

/** Bytes the image's layers use unpacked (each snapshot measured by `du` at unpack time). */
export async function imageSize(ctx: ImageContext, record: ImageRecord): Promise<number> {
  let size = 0;
  for (const l of record.layers) {
    try {
      const s = await ctx.snapshots.stat(l.chainId);
      size += Number(s.labels['berth.usage'] ?? 0);
    } catch {
      size += l.size;
    }
  }
  return size;
}

export async function imageConfig(ctx: ImageContext, record: ImageRecord): Promise<ImageConfig> {
  return readJson<ImageConfig>(ctx, record.config.digest);
}

function containerConfig(config: ImageConfig): ImageContainerConfig {
  const c = config.config ?? {};
  const out: ImageContainerConfig = {};
  for (const [k, v] of Object.entries(c)) {
    if (v === null || v === undefined) continue;
    (out as Record<string, unknown>)[k] = v;
  }
  return out;
}

export async function inspectImage(ctx: ImageContext, record: ImageRecord): Promise<ImageInspect> {
  const config = await imageConfig(ctx, record);
  const out: ImageInspect = {
    Id: record.id,
    RepoTags: ctx.images.namesOf(record.id).map(familiar),
    RepoDigests: record.repoDigests.map(familiar),
    Parent: config.parent ?? '',
    Comment: config.history?.[config.history.length - 1]?.comment ?? '',
    Created: config.created ?? EPOCH,
    DockerVersion: config.docker_version ?? '',
    Author: config.author ?? '',
    Config: containerConfig(config),
    Architecture: config.architecture,
    Os: config.os,
    Size: await imageSize(ctx, record),
    GraphDriver: {
      Name: 'overlay2',
      Data: await graphDriverData(ctx, record),
    },
    RootFS: { Type: 'layers', Layers: config.rootfs.diff_ids },
    Metadata: { LastTagTime: record.lastTagTime ?? EPOCH },
    Descriptor: { mediaType: record.target.mediaType, digest: record.target.digest, size: record.target.size },
  };
  if (config.variant) out.Variant = config.variant;
  if (config['os.version']) out.OsVersion = config['os.version'];
  return out;
}

async function graphDriverData(ctx: ImageContext, record: ImageRecord): Promise<Record<string, string>> {
  const top = record.layers[record.layers.length - 1];
  if (!top) return {};
  try {
    const dirs = [await ctx.snapshots.snapshotDir(top.chainId), ...(await ctx.snapshots.lowerDirs(top.chainId))];
    const data: Record<string, string> = { UpperDir: dirs[0] as string, MergedDir: '', WorkDir: '' };
    if (dirs.length > 1) data.LowerDir = dirs.slice(1).join(':');
    return data;
  } catch {
    return {};
  }
}

export async function summarizeImage(ctx: ImageContext, record: ImageRecord, containers: number): Promise<ImageSummary> {
  const config = await imageConfig(ctx, record);
  const created = config.created ? Math.floor(Date.parse(config.created) / 1000) : 0;
  return {
    Id: record.id,
    ParentId: config.parent ?? '',
    RepoTags: ctx.images.namesOf(record.id).map(familiar),
    RepoDigests: record.repoDigests.map(familiar),
    Created: Number.isFinite(created) ? created : 0,
    Size: await imageSize(ctx, record),
    SharedSize: -1,
    Labels: (config.config?.Labels ?? {}) as Record<string, string>,
    Containers: containers,
  };
}

/** Newest first, like `docker history`; layer IDs only on the top entry (the rest `<missing>`). */
export async function imageHistory(ctx: ImageContext, record: ImageRecord): Promise<ImageHistoryEntry[]> {
  const config = await imageConfig(ctx, record);
  const history = config.history ?? [];
  const out: ImageHistoryEntry[] = [];
  let layer = 0;
  const sizes: number[] = [];
  for (const l of record.layers) {
    try {
      sizes.push(Number((await ctx.snapshots.stat(l.chainId)).labels['berth.diff-size'] ?? l.size));
    } catch {
      sizes.push(l.size);
    }
  }
  for (const h of history) {
    const empty = h.empty_layer === true;
    out.push({
      Id: '<missing>',
      Created: h.created ? Math.floor(Date.parse(h.created) / 1000) : 0,
      CreatedBy: h.created_by ?? '',
      Tags: [],
      Size: empty ? 0 : sizes[layer] ?? 0,
      Comment: h.comment ?? '',
    });
    if (!empty) layer++;
  }
  out.reverse();
  if (out[0]) {
    out[0].Id = record.id;
    out[0].Tags = ctx.images.namesOf(record.id).map(familiar);
  }
  return out;
}
