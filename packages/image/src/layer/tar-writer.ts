import type { TarEntryType } from './tar-reader.js';

/** What `packTar` writes for one member. Paths are relative, `/`-separated, without `./`. */
export interface TarWriteHeader {
  path: string;
  type: Exclude<TarEntryType, 'unknown'>;
  mode: number;
  uid?: number;
  gid?: number;
  size?: number;
  /** Whole seconds since the epoch (fractions are dropped for reproducible output). */
  mtime?: number;
  linkpath?: string;
  uname?: string;
  gname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Map<string, Buffer>;
}

export interface TarWriteEntry {
  header: TarWriteHeader;
  /** Data of a regular file; exactly `header.size` bytes. */
  body?: () => AsyncIterable<Buffer | Uint8Array>;
}

const TYPEFLAG: Record<TarWriteHeader['type'], string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  directory: '5',
  fifo: '6',
};

function writeString(b: Buffer, s: string, off: number, len: number): boolean {
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length > len) return false;
  bytes.copy(b, off);
  return true;
}

function writeOctal(b: Buffer, n: number, off: number, len: number): boolean {
  const s = Math.floor(n).toString(8);
  if (n < 0 || s.length > len - 1) return false;
  b.write(s.padStart(len - 1, '0'), off, 'ascii');
  b[off + len - 1] = 0;
  return true;
}

function paxRecord(key: string, value: Buffer): Buffer {
  // "%d %s=%s\n" where %d counts the whole record, itself included.
  const rest = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let len = rest.length + 1;
  while (String(len).length + rest.length !== len) len = String(len).length + rest.length;
  return Buffer.concat([Buffer.from(String(len)), rest]);
}

function block(h: { name: string; mode: number; uid: number; gid: number; size: number; mtime: number; typeflag: string; linkname: string; uname: string; gname: string; devmajor: number; devminor: number }): { buf: Buffer; overflow: boolean } {
  const b = Buffer.alloc(512);
  let ok = true;
  ok = writeString(b, h.name, 0, 100) && ok;
  writeOctal(b, h.mode & 0o7777, 100, 8);
  ok = writeOctal(b, h.uid, 108, 8) && ok;
  ok = writeOctal(b, h.gid, 116, 8) && ok;
  ok = writeOctal(b, h.size, 124, 12) && ok;
  ok = writeOctal(b, h.mtime, 136, 12) && ok;
  b.write(h.typeflag, 156, 'ascii');
  ok = writeString(b, h.linkname, 157, 100) && ok;
  b.write('ustar\0', 257, 'latin1');
  b.write('00', 263, 'ascii');
  ok = writeString(b, h.uname, 265, 32) && ok;
  ok = writeString(b, h.gname, 297, 32) && ok;
  writeOctal(b, h.devmajor, 329, 8);
  writeOctal(b, h.devminor, 337, 8);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[i] as number;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return { buf: b, overflow: !ok };
}

/**
 * The header block(s) for one member: a plain ustar header, preceded by a PAX header when a
 * field does not fit (long or non-ASCII names, big sizes/ids) or xattrs are present. The output
 * depends only on the header given — the same input gives the same bytes.
 */
export function encodeHeader(h: TarWriteHeader): Buffer {
  const name = h.type === 'directory' && !h.path.endsWith('/') ? `${h.path}/` : h.path;
  const fields = {
    name,
    mode: h.mode,
    uid: h.uid ?? 0,
    gid: h.gid ?? 0,
    size: h.type === 'file' ? h.size ?? 0 : 0,
    mtime: Math.floor(h.mtime ?? 0),
    typeflag: TYPEFLAG[h.type],
    linkname: h.linkpath ?? '',
    uname: h.uname ?? '',
    gname: h.gname ?? '',
    devmajor: h.devmajor ?? 0,
    devminor: h.devminor ?? 0,
  };
  const pax: [string, Buffer][] = [];
  const ascii = (s: string): boolean => /^[\x20-\x7e]*$/.test(s);
  if (Buffer.byteLength(name) > 100 || !ascii(name)) pax.push(['path', Buffer.from(name)]);
  if (Buffer.byteLength(fields.linkname) > 100 || !ascii(fields.linkname)) pax.push(['linkpath', Buffer.from(fields.linkname)]);
  if (fields.size > 0o77777777777) pax.push(['size', Buffer.from(String(fields.size))]);
  if (fields.uid > 0o7777777) pax.push(['uid', Buffer.from(String(fields.uid))]);
  if (fields.gid > 0o7777777) pax.push(['gid', Buffer.from(String(fields.gid))]);
  if (h.xattrs) for (const k of [...h.xattrs.keys()].sort()) pax.push([`SCHILY.xattr.${k}`, h.xattrs.get(k) as Buffer]);
  const main = block({
    ...fields,
    name: Buffer.byteLength(name) > 100 || !ascii(name) ? Buffer.from(name).subarray(0, 99).toString('latin1').replace(/[^\x20-\x7e]/g, '_') : name,
    linkname: Buffer.byteLength(fields.linkname) > 100 || !ascii(fields.linkname) ? '' : fields.linkname,
    size: fields.size > 0o77777777777 ? 0 : fields.size,
    uid: fields.uid > 0o7777777 ? 0 : fields.uid,
    gid: fields.gid > 0o7777777 ? 0 : fields.gid,
  }).buf;
  if (pax.length === 0) return main;
  const body = Buffer.concat(pax.map(([k, v]) => paxRecord(k, v)));
  const paxHeader = block({
    name: 'PaxHeaders/' + name.replace(/\/$/, '').split('/').pop()!.slice(0, 80),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: body.length,
    mtime: 0,
    typeflag: 'x',
    linkname: '',
    uname: '',
    gname: '',
    devmajor: 0,
    devminor: 0,
  }).buf;
  return Buffer.concat([paxHeader, body, Buffer.alloc((512 - (body.length % 512)) % 512), main]);
}

/** Serialises members into a tar stream (with the two-block end marker). */
export async function* packTar(entries: AsyncIterable<TarWriteEntry> | Iterable<TarWriteEntry>): AsyncGenerator<Buffer> {
  for await (const e of entries) {
    yield encodeHeader(e.header);
    if (e.header.type === 'file') {
      const size = e.header.size ?? 0;
      let written = 0;
      if (e.body) {
        for await (const chunk of e.body()) {
          const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
          if (written + b.length > size) throw new Error(`tar member ${e.header.path} is longer than its declared ${size} bytes`);
          written += b.length;
          yield b;
        }
      }
      if (written !== size) throw new Error(`tar member ${e.header.path} is ${written} bytes, declared ${size}`);
      const pad = (512 - (size % 512)) % 512;
      if (pad) yield Buffer.alloc(pad);
    }
  }
  yield Buffer.alloc(1024);
}
