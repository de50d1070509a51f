/**
 * @berth/image — where images live on disk: content store, image store, layer codec, overlay
 * snapshotter, registry pull/push, archives. The daemon uses `openImageService`.
 */
export {
  ImageError,
  ImageNotFoundError,
  ImageInUseError,
  ContentNotFoundError,
  ContentExistsError,
  ContentVerificationError,
  IngestLockedError,
  UnsafeLayerError,
  InvalidLayerError,
  SnapshotNotFoundError,
  SnapshotExistsError,
  SnapshotStateError,
  InvalidImageError,
} from './errors.js';

// Content store (containerd's model: read / write / manage roles)
export { LocalContentStore, openContentStore, writeBlob } from './content/local-store.js';
export type { ContentStore, ContentProvider, ContentIngester, ContentManager, ContentWriter, ContentInfo, IngestStatus, WriterOptions, Digest } from './content/types.js';

// Layers
export { applyLayer, entryComponents, WHITEOUT_PREFIX, OPAQUE_WHITEOUT } from './layer/apply.js';
export type { ApplyLayerOptions, ApplyLayerResult } from './layer/apply.js';
export { createLayerTar, createDirectoryTar, upperDirEntries, upperDirChanges } from './layer/diff.js';
export type { PathChange } from './layer/diff.js';
export { decompressStream, detectCompression } from './layer/decompress.js';
export type { Compression } from './layer/decompress.js';
export { packTar, encodeHeader } from './layer/tar-writer.js';
export type { TarWriteEntry, TarWriteHeader } from './layer/tar-writer.js';
export { readTar, ByteSource } from './layer/tar-reader.js';
export type { TarHeader, TarEntryType } from './layer/tar-reader.js';

// Snapshots
export { OverlaySnapshotter, openOverlaySnapshotter, mountAll, unmount, diskUsage } from './snapshot/overlay.js';
export type { Mount, Snapshotter, SnapshotInfo, SnapshotKind } from './snapshot/types.js';

// Image store
export { ImageStore, openImageStore, chainIds } from './store/image-store.js';
export type { ImageRecord, ImageLayerRecord } from './store/image-store.js';
export { openImageContext, unpackImage, unpackLayer, recordFor } from './store/context.js';
export type { ImageContext } from './store/context.js';

// Distribution
export { pullImage } from './distribution/pull.js';
export type { RegistrySource, PullImageOptions } from './distribution/pull.js';
export { pushImage } from './distribution/push.js';
export type { RegistrySink } from './distribution/push.js';

// Archives
export { loadArchive, loadOciLayoutDir, saveArchive, saveOciLayoutDir } from './archive/docker-archive.js';
export type { LoadedImage } from './archive/docker-archive.js';
export { ingestLayer, writeImage } from './archive/build.js';

// The facade the daemon uses
export { openImageService, LocalImageService } from './service/service.js';
export type { RegistryFactory } from './service/service.js';
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
// builder
export { openBuilder, Builder } from './builder/builder.js';
export type { BuilderOptions, BuildOptions, BuildResult, BuildEvent } from './builder/builder.js';
export type { BuildExecutor, BuildRunRequest, BuildRunResult, BuildProcess, BuildNetworkMode } from './builder/executor.js';
export { verifyBuildExecutor, ExecutorConformanceError } from './builder/executor-conformance.js';
export type { VerifyBuildExecutorOptions } from './builder/executor-conformance.js';
export { BuildContext } from './builder/context/build-context.js';
export { IgnoreMatcher, parseDockerignore } from './builder/context/dockerignore.js';
export type { IgnorePattern } from './builder/context/dockerignore.js';
export { staticImageSource, ociLayoutImageSource, bytesLayer, BaseImageNotFoundError } from './builder/image-source.js';
export type { BuildImageSource, SourceImage, SourceLayer } from './builder/image-source.js';
export { writeOciLayout, writeDockerArchive, dockerArchiveStream } from './builder/output.js';
export { imageContextForBuilds } from './builder/image-store-adapter.js';
export type { ImageContextBuildOptions } from './builder/image-store-adapter.js';
export type { BuildImageStore, BuildOutput, BuiltImage } from './builder/output.js';
export { parseDockerfile } from './builder/parser/instructions.js';
export type {
  Dockerfile,
  Stage,
  Instruction,
  SourceLocation,
  CommandLine,
  FromInstruction,
  RunInstruction,
  CopyInstruction,
  EnvInstruction,
  LabelInstruction,
  ArgInstruction,
  ArgDefinition,
  KeyValue,
  SingleValueInstruction,
  ListInstruction,
  CmdInstruction,
  ShellInstruction,
  HealthcheckInstruction,
  OnbuildInstruction,
} from './builder/parser/instructions.js';
export { parseDockerfileAst } from './builder/parser/ast.js';
export type { DockerfileAst, RawInstruction, Heredoc, Directives } from './builder/parser/ast.js';
export { ShellLex } from './builder/parser/shell-lex.js';
export type { ShellLexOptions, EnvLookup, ExpansionResult } from './builder/parser/shell-lex.js';
export { parseRunMount } from './builder/run-mount.js';
export type { RunMount } from './builder/run-mount.js';
export {
  BuildError,
  DockerfileParseError,
  ShellLexError,
  InvalidBuildError,
  RunStepFailedError,
  SourceNotFoundError,
} from './builder/errors.js';
// end builder
// --- end builder exports ---
