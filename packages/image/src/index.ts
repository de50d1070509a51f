/**
 * @berth/image — where images live on disk: content store, image store, layer codec, overlay
 * snapshotter, registry pull/push, archives. The daemon uses `openImageService`.
 */
export { ImageError, ImageNotFoundError, ImageInUseError, ContentNotFoundError, ContentExistsError, ContentVerificationError, IngestLockedError, UnsafeLayerError, InvalidLayerError, SnapshotNotFoundError, SnapshotExistsError, SnapshotStateError, InvalidImageError } from './errors.js';

// Content store
export { LocalContentStore, openContentStore, writeBlob } from './content/local-store.js';
export type { ContentStore, ContentProvider, ContentIngester, ContentManager, ContentWriter, ContentInfo, IngestStatus, WriterOptions, Digest } from './content/types.js';

// Snapshots
export type { Mount, Snapshotter, SnapshotInfo, SnapshotKind } from './snapshot/types.js';

// The facade the daemon uses
export { openImageService } from './service/service.js';
export type {
  ImageService,
  ImageServiceOptions,
  PullOptions,
  PullResult,
  PullProgress,
  LayerPhase,
  PushOptions,
  PushResult,
  PushProgress,
  RegistryAuth,
  ImageSummary,
  ImageInspect,
  ImageContainerConfig,
  ImageHistoryEntry,
  ImageDeleteResponseItem,
  FilesystemChange,
  DiskUsage,
  GcResult,
  LoadResult,
  ImageConfigChanges,
} from './service/types.js';

// --- builder exports (owned by the builder engineer; add below, keep this block) ---
// --- end builder exports ---
