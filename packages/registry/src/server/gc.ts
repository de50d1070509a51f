import type { StorageDriver } from './storage/driver.js';

export interface GarbageCollectionOptions {
  /**
   * Blobs committed more recently than this are kept even when no manifest references them yet:
   * a client pushes layers before the manifest that names them. Default one hour.
   */
  gracePeriodMs?: number;
  /** Report what would be deleted without deleting. */
  dryRun?: boolean;
  /** Upload sessions started longer ago than this are abandoned and removed. Default 7 days. */
  uploadMaxAgeMs?: number;
}

export interface GarbageCollectionReport {
  startedAt: string;
  durationMs: number;
  blobsScanned: number;
  blobsMarked: number;
  blobsDeleted: string[];
  bytesFreed: number;
  /** Kept although unreferenced: young (grace period) or touched by a request during the run. */
  blobsKept: number;
  /** Abandoned upload sessions removed (older than `uploadMaxAgeMs`). */
  uploadsPurged: string[];
}

/**
 * Online mark-and-sweep over a storage driver, safe to run while the server serves pushes and
 * pulls. Safety rests on three rules:
 * 1. Mark: every blob reachable from a manifest linked in any repository (the manifest itself,
 *    its config and layers, an index's children) is kept.
 * 2. Grace: unreferenced blobs younger than the grace period are kept — a push uploads layers
 *    before the manifest, and in-flight uploads are not blobs at all (uploads are never touched).
 * 3. Guard: while a run is active, every request that is about to rely on a blob (commit of an
 *    upload, mount, a manifest PUT naming it) calls `guard(digest)` first. A guarded digest is not
 *    deleted by this run; if its deletion had already begun, `guard` waits for it to finish so the
 *    caller re-checks existence afterwards and sees the truth (and the client re-uploads).
 * Because Node runs the guard's check-and-mark and the sweep's check-and-mark without an `await`
 * between them, the two cannot interleave.
 */
export class GarbageCollector {
  private readonly driver: StorageDriver;
  private touched: Set<string> | undefined;
  private readonly deleting = new Map<string, Promise<unknown>>();
  private running: Promise<GarbageCollectionReport> | undefined;

  constructor(driver: StorageDriver) {
    this.driver = driver;
  }

  get active(): boolean {
    return this.running !== undefined;
  }

  /** Call before relying on `digest` existing; see the class comment. */
  async guard(digest: string): Promise<void> {
    this.touched?.add(digest);
    const pending = this.deleting.get(digest);
    if (pending) await pending.catch(() => undefined);
  }

  /** Runs a collection; concurrent calls share the run in progress. */
  run(options: GarbageCollectionOptions = {}): Promise<GarbageCollectionReport> {
    this.running ??= this.collect(options).finally(() => {
      this.running = undefined;
      this.touched = undefined;
    });
    return this.running;
  }

  private async collect(options: GarbageCollectionOptions): Promise<GarbageCollectionReport> {
    const started = Date.now();
    const grace = options.gracePeriodMs ?? 60 * 60_000;
    this.touched = new Set();
    const marked = new Set<string>();

    for (const repository of await this.driver.listRepositories()) {
      for (const digest of await this.driver.listManifests(repository)) {
        marked.add(digest);
        const bytes = await this.driver.readBlobBytes(digest);
        if (!bytes) continue;
        for (const ref of referencedDigests(bytes)) marked.add(ref);
      }
    }

    const report: GarbageCollectionReport = {
      startedAt: new Date(started).toISOString(),
      durationMs: 0,
      blobsScanned: 0,
      blobsMarked: marked.size,
      blobsDeleted: [],
      bytesFreed: 0,
      blobsKept: 0,
      uploadsPurged: [],
    };
    const cutoff = started - grace;
    for await (const blob of this.driver.listBlobs()) {
      report.blobsScanned++;
      if (marked.has(blob.digest)) continue;
      // Check-and-mark with no await in between (see the class comment).
      if (this.touched.has(blob.digest) || blob.modifiedAt > cutoff) {
        report.blobsKept++;
        continue;
      }
      if (options.dryRun) {
        report.blobsDeleted.push(blob.digest);
        report.bytesFreed += blob.size;
        continue;
      }
      const deletion = this.driver.deleteBlob(blob.digest);
      this.deleting.set(blob.digest, deletion);
      try {
        if (await deletion) {
          report.blobsDeleted.push(blob.digest);
          report.bytesFreed += blob.size;
        }
      } finally {
        this.deleting.delete(blob.digest);
      }
    }

    if (!options.dryRun && report.blobsDeleted.length > 0) {
      const gone = new Set(report.blobsDeleted);
      for (const repository of await this.driver.listRepositories()) {
        for (const digest of await this.driver.listBlobLinks(repository)) {
          if (gone.has(digest) && !(await this.driver.statBlob(digest))) {
            await this.driver.unlinkBlob(repository, digest);
          }
        }
      }
    }
    const uploadCutoff = started - (options.uploadMaxAgeMs ?? 7 * 24 * 60 * 60_000);
    for await (const upload of this.driver.listUploads()) {
      if (upload.startedAt >= uploadCutoff) continue;
      if (options.dryRun || (await this.driver.cancelUpload(upload.id))) report.uploadsPurged.push(upload.id);
    }
    report.durationMs = Date.now() - started;
    return report;
  }
}

/** Digests a manifest or index names: config, layers, children (subject excluded: it may be elsewhere). */
export function referencedDigests(bytes: Uint8Array): string[] {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    return [];
  }
  if (typeof doc !== 'object' || doc === null) return [];
  const out: string[] = [];
  const take = (d: unknown): void => {
    if (typeof d === 'object' && d !== null && typeof (d as { digest?: unknown }).digest === 'string') {
      out.push((d as { digest: string }).digest);
    }
  };
  const m = doc as { config?: unknown; layers?: unknown; manifests?: unknown; blobs?: unknown };
  take(m.config);
  for (const list of [m.layers, m.manifests, m.blobs]) {
    if (Array.isArray(list)) list.forEach(take);
  }
  return out;
}
