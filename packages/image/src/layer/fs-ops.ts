import { execFile } from 'node:child_process';
import { InvalidLayerError } from '../errors.js';

// Node has no mknod or xattr calls; these go through mknod(1) (coreutils) and setfattr/getfattr
// (Debian package `attr`). Paths are always absolute and already resolved inside the root.

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new InvalidLayerError(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`, { cause: err }));
      else resolve(stdout);
    });
  });
}

export async function mknod(path: string, kind: 'c' | 'b' | 'p', mode: number, major = 0, minor = 0): Promise<void> {
  const args = ['-m', (mode & 0o7777).toString(8), '--', path, kind];
  if (kind !== 'p') args.push(String(major), String(minor));
  await run('mknod', args);
}

/** Sets one xattr without following a final symlink. */
export async function setXattr(path: string, name: string, value: Uint8Array): Promise<void> {
  await run('setfattr', ['-h', '-n', name, '-v', `0x${Buffer.from(value).toString('hex')}`, '--', path]);
}

/** All xattrs of every path under `dir` (recursively, not following symlinks), values as bytes. */
export async function getXattrsRecursive(dir: string): Promise<Map<string, Map<string, Buffer>>> {
  const out = new Map<string, Map<string, Buffer>>();
  let text: string;
  try {
    text = await run('getfattr', ['-R', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', dir]);
  } catch {
    return out;
  }
  let current: Map<string, Buffer> | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      const path = unescapeGetfattr(line.slice('# file: '.length));
      current = new Map();
      out.set(path, current);
    } else if (current && line.includes('=')) {
      const eq = line.indexOf('=');
      const value = line.slice(eq + 1);
      current.set(line.slice(0, eq), value.startsWith('0x') ? Buffer.from(value.slice(2), 'hex') : Buffer.from(value.replace(/^"|"$/g, '')));
    }
  }
  return out;
}

/** getfattr escapes non-printable bytes, backslash and newline as \ooo octal. */
function unescapeGetfattr(s: string): string {
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x5c && i + 3 < raw.length + 0 && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString('latin1'))) {
      bytes.push(parseInt(raw.subarray(i + 1, i + 4).toString('latin1'), 8));
      i += 3;
    } else bytes.push(raw[i] as number);
  }
  return Buffer.from(bytes).toString('utf8');
}
