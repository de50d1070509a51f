/** One mount, shaped like the OCI runtime spec's `mounts[]` entries. */
export interface Mount {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

export type SnapshotKind = 'active' | 'view' | 'committed';

export interface SnapshotInfo {
  /** The name the snapshot is addressed by (for committed layers: the chainID). */
  key: string;
  kind: SnapshotKind;
  /** Key of the committed parent, if any. */
  parent?: string;
  labels: Record<string, string>;
  createdAt: Date;
}

/**
 * Snapshots, in containerd's vocabulary:
 * - an **active** snapshot is writable; `prepare(key, parent)` creates one over a committed
 *   parent (or empty), `commit(name, key)` turns it into a **committed** snapshot named `name`
 *   (layers are committed under their chainID, so a layer shared by images exists once);
 * - a **view** is a read-only active snapshot over a committed parent;
 * - committed snapshots are immutable and can be parents; one with children cannot be removed.
 * `mounts(key)` returns how to mount an active snapshot or view (overlay over the parent chain,
 * or a bind mount for a single layer). Errors: `SnapshotNotFoundError`, `SnapshotExistsError`,
 * `SnapshotStateError` (wrong kind, has children).
 */
export interface Snapshotter {
  stat(key: string): Promise<SnapshotInfo>;
  /** Creates an active snapshot; `parent` must be committed. */
  prepare(key: string, parent?: string, opts?: { labels?: Record<string, string> }): Promise<Mount[]>;
  view(key: string, parent?: string, opts?: { labels?: Record<string, string> }): Promise<Mount[]>;
  mounts(key: string): Promise<Mount[]>;
  commit(name: string, key: string, opts?: { labels?: Record<string, string> }): Promise<void>;
  remove(key: string): Promise<void>;
  walk(fn: (info: SnapshotInfo) => void | Promise<void>): Promise<void>;
  /** Bytes used by the snapshot's own directory (not its parents), as `du` counts them. */
  usage(key: string): Promise<{ size: number; inodes: number }>;
  /** The directory an active snapshot writes into (overlay upperdir) — for unpacking layers. */
  upperDir(key: string): Promise<string>;
  /** The chain of directories, top first, that make up the snapshot's lower layers. */
  lowerDirs(key: string): Promise<string[]>;
}
