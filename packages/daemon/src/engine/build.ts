import type { Readable } from 'node:stream';

/** One message of the legacy builder's JSON stream. */
export type BuildMessage = { stream: string } | { aux: { ID: string } } | { status: string; id?: string };

export interface BuildRequest {
  context: Readable;
  dockerfile: string;
  tags: string[];
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  target?: string;
  noCache: boolean;
  pull: boolean;
  quiet: boolean;
  platform?: string;
  networkMode?: string;
  /** Images whose build history seeds the cache (`cachefrom`). */
  cacheFrom: string[];
  /**
   * Secrets for `RUN --mount=type=secret,id=…`, by id, from the `X-Berth-Build-Secrets` header:
   * no session protocol is needed, and they never reach a layer, the history or a cache key.
   */
  secrets: Record<string, Uint8Array>;
  /** Decoded X-Registry-Config: registry host → credentials. */
  auths: Record<string, { username?: string; password?: string; identitytoken?: string }>;
  onMessage: (message: BuildMessage) => void;
  /** A promise while the client reads the messages slower than they come (RUN output waits). */
  outputReady?: () => Promise<void> | undefined;
  signal?: AbortSignal;
}

/** `POST /build`, implemented over the Dockerfile builder of @berth/image. */
export interface ImageBuilder {
  build(request: BuildRequest): Promise<{ id: string }>;
  /** Shrinks the build cache to `keepBytes` (0 empties it). */
  prune(keepBytes: number): Promise<{ removed: number; reclaimed: number }>;
}
