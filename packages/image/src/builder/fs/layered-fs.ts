import { execFile } from 'node:child_process';
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ScopedFs, ScopedNode } from './scoped-path.js';
import { nodeKind } from '../context/build-context.js';

const execFileAsync = promisify(execFile);

/** Opaque directories per committed layer directory (layer directories never change). */
const opaqueByLayer = new Map<string, Promise<Set<string>>>();

/** The directories of a layer marked opaque, found with one `getfattr -R` walk. */
export function opaqueDirs(layer: string): Promise<Set<string>> {
  let found = opaqueByLayer.get(layer);
  if (!found) {
    found = (async () => {
      const out = new Set<string>();
      try {
        const { stdout } = await execFileAsync(
          'getfattr',
          ['-R', '-P', '-h', '--absolute-names', '-m', '^trusted\\.overlay\\.opaque$', '-d', layer],
          { maxBuffer: 64 << 20 },
        );
        let current: string | undefined;
        for (const line of stdout.split('\n')) {
          if (line.startsWith('# file: ')) current = line.slice(8);
          else if (current !== undefined && line === 'trusted.overlay.opaque="y"') out.add(current);
        }
      } catch {
        // No xattrs at all (or getfattr reports nothing): no opaque directories.
      }
      return out;
    })();
    opaqueByLayer.set(layer, found);
    if (opaqueByLayer.size > 4096) opaqueByLayer.delete(opaqueByLayer.keys().next().value as string);
  }
  return found;
}

/** Forgets what is known about a layer directory (it was removed or replaced). */
export function forgetLayerDir(layer: string): void {
  opaqueByLayer.delete(layer);
}

/**
 * A read-only merged view over unpacked layer directories in overlayfs lower-dir form
 * (whiteouts are 0:0 character devices, opaque directories carry `trusted.overlay.opaque=y`),
 * top layer first — what the root filesystem looks like without mounting it. COPY uses it to
 * resolve destinations and to read metadata of existing parent directories.
 */
export class LayeredFs implements ScopedFs {
  /** `withoutOpaque`: layers known to hold no opaque directories (a step's fresh upper dir). */
  constructor(
    readonly layers: readonly string[],
    private readonly withoutOpaque: ReadonlySet<string> = new Set(),
  ) {}

  private async isOpaque(dir: string): Promise<boolean> {
    const layer = this.layers.find((l) => dir === l || dir.startsWith(`${l}/`));
    if (layer === undefined || this.withoutOpaque.has(layer)) return false;
    return (await opaqueDirs(layer)).has(dir);
  }

  /** The layer path and stats of the topmost entry for `parts`, or undefined when absent. */
  async find(parts: readonly string[]): Promise<{ path: string; st: Stats } | undefined> {
    layers: for (const layer of this.layers) {
      // A whiteout or an opaque directory above hides everything below it.
      for (let i = 0; i < parts.length; i++) {
        const prefix = join(layer, ...parts.slice(0, i + 1));
        const st = await lstat(prefix).catch(() => undefined);
        if (!st) continue layers;
        if (st.isCharacterDevice() && st.rdev === 0) return undefined;
        if (i < parts.length - 1 && !st.isDirectory()) return undefined;
        if (i === parts.length - 1) return { path: prefix, st };
        if (await this.isOpaque(prefix)) {
          // Below an opaque directory, only this layer counts for the rest of the path.
          const rest = join(layer, ...parts);
          const rst = await lstat(rest).catch(() => undefined);
          if (!rst || (rst.isCharacterDevice() && rst.rdev === 0)) return undefined;
          return { path: rest, st: rst };
        }
      }
      if (parts.length === 0) {
        const st = await lstat(layer).catch(() => undefined);
        if (st) return { path: layer, st };
      }
    }
    return undefined;
  }

  async lstat(parts: readonly string[]): Promise<ScopedNode | undefined> {
    if (parts.length === 0) return { kind: 'directory' };
    const found = await this.find(parts);
    return found ? { kind: nodeKind(found.st) } : undefined;
  }

  async stat(parts: readonly string[]): Promise<Stats | undefined> {
    return (await this.find(parts))?.st;
  }

  async readlink(parts: readonly string[]): Promise<string> {
    const found = await this.find(parts);
    if (!found) throw new Error(`no such file: /${parts.join('/')}`);
    return readlink(found.path);
  }

  async readFile(parts: readonly string[]): Promise<Buffer | undefined> {
    const found = await this.find(parts);
    if (!found || !found.st.isFile()) return undefined;
    return readFile(found.path);
  }

  async readdir(parts: readonly string[]): Promise<string[]> {
    const names = new Set<string>();
    const hidden = new Set<string>();
    for (const layer of this.layers) {
      const dir = join(layer, ...parts);
      const st = await lstat(dir).catch(() => undefined);
      if (!st) continue;
      if (!st.isDirectory()) break;
      for (const name of await readdir(dir)) {
        if (names.has(name) || hidden.has(name)) continue;
        const cst = await lstat(join(dir, name));
        if (cst.isCharacterDevice() && cst.rdev === 0) hidden.add(name);
        else names.add(name);
      }
      if (await this.isOpaque(dir)) break;
    }
    return [...names];
  }
}
