import { InvalidLayerError } from '../errors.js';

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'directory' | 'fifo' | 'unknown';

/** One tar member's metadata after PAX/GNU long-name records are folded in. */
export interface TarHeader {
  path: string;
  type: TarEntryType;
  /** The raw typeflag character. */
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch (may carry a fraction from PAX). */
  mtime: number;
  linkpath: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes (`SCHILY.xattr.*`), values as raw bytes. */
  xattrs: Map<string, Buffer>;
}

/**
 * Pulls exact byte counts from an async iterable of chunks. `onBytes` sees every byte consumed
 * (and the trailing padding when `drain` is called) — the diffID is computed there.
 *
 * With `release`, the source's chunks are lent (see `decompressLent`): a chunk is handed back
 * once it is used up and the caller comes back for more, so whatever `read` returned or
 * `pieces` yielded is valid only until the next call on this ByteSource (or the next step of
 * the `pieces` generator) — callers copy what they keep.
 */
export class ByteSource {
  private readonly it: AsyncIterator<Buffer | Uint8Array>;
  /** Unread input: the chunks as they arrived (never concatenated), the first from `head`. */
  private chunks: Buffer[] = [];
  private head = 0;
  private buffered = 0;
  private eof = false;
  /** Chunks used up whose views the caller may still hold until its next call. */
  private spent: Buffer[] = [];
  total = 0;

  constructor(
    source: AsyncIterable<Buffer | Uint8Array>,
    private readonly onBytes?: (chunk: Buffer) => void,
    private readonly release?: (chunk: Buffer) => void,
  ) {
    this.it = source[Symbol.asyncIterator]();
  }

  private recycle(): void {
    if (this.spent.length === 0) return;
    const release = this.release as (chunk: Buffer) => void;
    for (const c of this.spent) release(c);
    this.spent.length = 0;
  }

  private async fill(): Promise<boolean> {
    if (this.eof) return false;
    const { value, done } = await this.it.next();
    if (done) {
      this.eof = true;
      return false;
    }
    const chunk = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    this.total += chunk.length;
    this.onBytes?.(chunk);
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    } else this.release?.(chunk);
    return true;
  }

  /** Takes up to `n` buffered bytes from the first chunk (a view, no copy). */
  private take(n: number): Buffer {
    const first = this.chunks[0] as Buffer;
    const avail = first.length - this.head;
    const len = Math.min(n, avail);
    const out = first.subarray(this.head, this.head + len);
    if (len === avail) {
      this.chunks.shift();
      this.head = 0;
      if (this.release) this.spent.push(first);
    } else this.head += len;
    this.buffered -= len;
    return out;
  }

  /** Exactly `n` bytes, or fewer only at end of input. */
  async read(n: number): Promise<Buffer> {
    this.recycle();
    while (this.buffered < n) if (!(await this.fill())) break;
    const want = Math.min(n, this.buffered);
    if (want === 0) return Buffer.alloc(0);
    const first = this.take(want);
    if (first.length === want) return first;
    const out = Buffer.allocUnsafe(want);
    first.copy(out, 0);
    let at = first.length;
    while (at < want) {
      const piece = this.take(want - at);
      piece.copy(out, at);
      at += piece.length;
    }
    return out;
  }

  /** Yields the next `n` bytes in pieces as they arrive (no copying into one buffer). */
  async *pieces(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      this.recycle();
      if (this.buffered === 0 && !(await this.fill())) throw new InvalidLayerError('unexpected end of tar stream');
      if (this.buffered === 0) continue;
      const out = this.take(left);
      left -= out.length;
      yield out;
    }
  }

  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      this.recycle();
      if (this.buffered === 0 && !(await this.fill())) throw new InvalidLayerError('unexpected end of tar stream');
      if (this.buffered === 0) continue;
      left -= this.take(left).length;
    }
    this.recycle();
  }

  /** Consumes the rest of the input (end-of-archive padding still counts for the diffID). */
  async drain(): Promise<void> {
    this.recycle();
    if (this.release) for (const c of this.chunks) this.release(c);
    this.chunks = [];
    this.head = 0;
    this.buffered = 0;
    while (await this.fill()) {
      if (this.release) for (const c of this.chunks) this.release(c);
      this.chunks = [];
      this.buffered = 0;
    }
  }
}

function cstring(b: Buffer, start: number, len: number): string {
  const s = b.subarray(start, start + len);
  const nul = s.indexOf(0);
  return (nul === -1 ? s : s.subarray(0, nul)).toString('utf8');
}

function numeric(b: Buffer, start: number, len: number, field: string): number {
  const s = b.subarray(start, start + len);
  if (s[0] !== undefined && s[0] & 0x80) {
    // base-256 (GNU): big-endian two's complement, high bit set for positive
    let v = BigInt(s[0] & 0x7f);
    for (let i = 1; i < s.length; i++) v = (v << 8n) | BigInt(s[i] as number);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidLayerError(`tar header field ${field} is too large`);
    return Number(v);
  }
  const text = cstring(b, start, len).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new InvalidLayerError(`tar header field ${field} is not octal: ${JSON.stringify(text)}`);
  return parseInt(text, 8);
}

function checksumOk(h: Buffer): boolean {
  let stored: number;
  try {
    stored = numeric(h, 148, 8, 'chksum');
  } catch {
    return false;
  }
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] as number);
  return sum === stored;
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'directory',
  '6': 'fifo',
};

/** Parses PAX records ("%d %s=%s\n"); values stay raw bytes (xattrs are binary). */
export function parsePax(body: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < body.length) {
    const sp = body.indexOf(0x20, pos);
    if (sp === -1) break;
    const len = parseInt(body.subarray(pos, sp).toString('ascii'), 10);
    if (!Number.isFinite(len) || len <= 0 || pos + len > body.length) throw new InvalidLayerError('malformed PAX record');
    const rec = body.subarray(sp + 1, pos + len - 1); // drop trailing \n
    const eq = rec.indexOf(0x3d);
    if (eq === -1) throw new InvalidLayerError('malformed PAX record (no =)');
    out.set(rec.subarray(0, eq).toString('utf8'), Buffer.from(rec.subarray(eq + 1)));
    pos += len;
  }
  return out;
}

const MAX_META = 1 << 20;

/**
 * Streams tar members. The consumer must read or skip `body` fully (or call `skip`) before
 * asking for the next entry; `readTar` skips whatever is left.
 */
export async function* readTar(src: ByteSource): AsyncGenerator<{ header: TarHeader; body: () => AsyncGenerator<Buffer> }> {
  let globalPax = new Map<string, Buffer>();
  let pax: Map<string, Buffer> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  while (true) {
    const block = await src.read(512);
    if (block.length === 0) return; // tolerated: no end-of-archive marker
    if (block.length < 512) throw new InvalidLayerError('truncated tar header');
    if (block.every((x) => x === 0)) {
      await src.drain();
      return;
    }
    if (!checksumOk(block)) throw new InvalidLayerError('tar header checksum mismatch (not a tar stream?)');
    const typeflag = String.fromCharCode(block[156] as number);
    const size = numeric(block, 124, 12, 'size');
    const padded = Math.ceil(size / 512) * 512;

    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      if (size > MAX_META) throw new InvalidLayerError(`tar metadata record of ${size} bytes is too large`);
      const body = await src.read(padded);
      if (body.length < padded) throw new InvalidLayerError('truncated tar metadata record');
      const data = body.subarray(0, size);
      if (typeflag === 'x') pax = parsePax(data);
      else if (typeflag === 'g') globalPax = new Map([...globalPax, ...parsePax(data)]);
      else if (typeflag === 'L') longName = cstring(data, 0, data.length);
      else longLink = cstring(data, 0, data.length);
      continue;
    }

    const magic = block.subarray(257, 263).toString('latin1');
    let name = cstring(block, 0, 100);
    if (magic === 'ustar\0') {
      const prefix = cstring(block, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    const merged = new Map([...globalPax, ...(pax ?? [])]);
    const str = (k: string): string | undefined => merged.get(k)?.toString('utf8');
    const num = (k: string): number | undefined => {
      const v = str(k);
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!Number.isFinite(n)) throw new InvalidLayerError(`PAX ${k} is not a number`);
      return n;
    };
    const xattrs = new Map<string, Buffer>();
    for (const [k, v] of merged) {
      if (k.startsWith('SCHILY.xattr.')) xattrs.set(k.slice('SCHILY.xattr.'.length), v);
      else if (k.startsWith('LIBARCHIVE.xattr.')) xattrs.set(decodeURIComponent(k.slice('LIBARCHIVE.xattr.'.length)), Buffer.from(v.toString('ascii'), 'base64'));
    }
    const realSize = num('size') ?? size;
    const header: TarHeader = {
      path: str('path') ?? longName ?? name,
      type: TYPES[typeflag] ?? 'unknown',
      typeflag,
      mode: numeric(block, 100, 8, 'mode') & 0o7777,
      uid: num('uid') ?? numeric(block, 108, 8, 'uid'),
      gid: num('gid') ?? numeric(block, 116, 8, 'gid'),
      size: realSize,
      mtime: num('mtime') ?? numeric(block, 136, 12, 'mtime'),
      linkpath: str('linkpath') ?? longLink ?? cstring(block, 157, 100),
      uname: str('uname') ?? cstring(block, 265, 32),
      gname: str('gname') ?? cstring(block, 297, 32),
      devmajor: numeric(block, 329, 8, 'devmajor'),
      devminor: numeric(block, 337, 8, 'devminor'),
      xattrs,
    };
    pax = undefined;
    longName = undefined;
    longLink = undefined;
    // Whatever the type, the declared size is what follows the header.
    const dataSize = realSize;
    const dataPadded = Math.ceil(dataSize / 512) * 512;
    let consumed = 0;
    let started = false;
    const body = async function* (): AsyncGenerator<Buffer> {
      started = true;
      for await (const piece of src.pieces(dataSize)) {
        consumed += piece.length;
        yield piece;
      }
    };
    yield { header, body };
    if (!started || consumed < dataSize) await src.skip(dataSize - consumed);
    if (dataPadded > dataSize) await src.skip(dataPadded - dataSize);
  }
}
