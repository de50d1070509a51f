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
// builder
export { openBuilder, Builder } from './builder/builder.js';
export type { BuilderOptions, BuildOptions, BuildResult, BuildEvent } from './builder/builder.js';
export type { BuildExecutor, BuildRunRequest, BuildRunResult, BuildProcess, BuildNetworkMode } from './builder/executor.js';
export { BuildContext } from './builder/context/build-context.js';
export { IgnoreMatcher, parseDockerignore } from './builder/context/dockerignore.js';
export type { IgnorePattern } from './builder/context/dockerignore.js';
export { staticImageSource, ociLayoutImageSource, bytesLayer, BaseImageNotFoundError } from './builder/image-source.js';
export type { BuildImageSource, SourceImage, SourceLayer } from './builder/image-source.js';
export { writeOciLayout, writeDockerArchive, dockerArchiveStream } from './builder/output.js';
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
