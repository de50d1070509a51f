import { InvalidBuildError } from '../errors.js';
import type { LayeredFs } from './layered-fs.js';

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

async function readLines(fs: LayeredFs, path: string): Promise<string[][]> {
  const bytes = await fs.readFile(path.split('/').filter(Boolean));
  if (!bytes) return [];
  return bytes
    .toString('utf8')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

async function passwd(fs: LayeredFs): Promise<PasswdEntry[]> {
  return (await readLines(fs, '/etc/passwd'))
    .filter((f) => f.length >= 4)
    .map((f) => ({ name: f[0] ?? '', uid: Number(f[2]), gid: Number(f[3]) }))
    .filter((e) => Number.isInteger(e.uid) && Number.isInteger(e.gid));
}

async function groups(fs: LayeredFs): Promise<GroupEntry[]> {
  return (await readLines(fs, '/etc/group'))
    .filter((f) => f.length >= 3)
    .map((f) => ({ name: f[0] ?? '', gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) }))
    .filter((e) => Number.isInteger(e.gid));
}

const NUMERIC = /^\d+$/;
const MAX_ID = 2 ** 32 - 2;

function numericId(s: string, what: string): number {
  const n = Number(s);
  if (n > MAX_ID) throw new InvalidBuildError(`${what} ${s} is out of range`);
  return n;
}

/**
 * Resolves `user[:group]` (names or numbers) against the image's /etc/passwd and /etc/group
 * as runc/Docker do: a name must exist; a numeric uid need not; the primary gid comes from
 * passwd unless a group is given; supplementary groups are those listing the user by name.
 */
export async function resolveUser(fs: LayeredFs, spec: string): Promise<ResolvedUser> {
  // No USER means uid 0, which needs no passwd entry (a FROM scratch image has none).
  const value = spec === '' ? '0' : spec;
  const colon = value.indexOf(':');
  const userPart = colon < 0 ? value : value.slice(0, colon);
  const groupPart = colon < 0 ? undefined : value.slice(colon + 1);
  const users = await passwd(fs);
  let entry: PasswdEntry | undefined;
  let uid: number;
  if (NUMERIC.test(userPart)) {
    uid = numericId(userPart, 'uid');
    entry = users.find((u) => u.uid === uid);
  } else {
    entry = users.find((u) => u.name === userPart);
    if (!entry) throw new InvalidBuildError(`unable to find user ${userPart}: no matching entries in passwd file`);
    uid = entry.uid;
  }
  let gid = entry?.gid ?? 0;
  const allGroups = await groups(fs);
  if (groupPart !== undefined && groupPart !== '') {
    if (NUMERIC.test(groupPart)) gid = numericId(groupPart, 'gid');
    else {
      const g = allGroups.find((x) => x.name === groupPart);
      if (!g) throw new InvalidBuildError(`unable to find group ${groupPart}: no matching entries in group file`);
      gid = g.gid;
    }
  }
  const additionalGids =
    groupPart === undefined && entry
      ? allGroups.filter((g) => g.members.includes(entry.name) && g.gid !== gid).map((g) => g.gid)
      : [];
  return { uid, gid, additionalGids };
}

/**
 * `COPY --chown` ownership: like resolveUser, but a user without a group gets gid = uid when
 * numeric (Docker's rule for --chown), and names resolve against the destination image.
 */
export async function resolveChown(fs: LayeredFs, spec: string): Promise<{ uid: number; gid: number }> {
  const colon = spec.indexOf(':');
  const userPart = colon < 0 ? spec : spec.slice(0, colon);
  const groupPart = colon < 0 ? undefined : spec.slice(colon + 1);
  let uid: number;
  if (NUMERIC.test(userPart)) uid = numericId(userPart, 'uid');
  else {
    const entry = (await passwd(fs)).find((u) => u.name === userPart);
    if (!entry) throw new InvalidBuildError(`unable to convert uid/gid chown string to host mapping: can't find uid for user ${userPart}`);
    uid = entry.uid;
  }
  let gid = uid;
  if (groupPart !== undefined && groupPart !== '') {
    if (NUMERIC.test(groupPart)) gid = numericId(groupPart, 'gid');
    else {
      const g = (await groups(fs)).find((x) => x.name === groupPart);
      if (!g) throw new InvalidBuildError(`unable to convert uid/gid chown string to host mapping: can't find gid for group ${groupPart}`);
      gid = g.gid;
    }
  } else if (!NUMERIC.test(userPart)) {
    gid = (await passwd(fs)).find((u) => u.name === userPart)?.gid ?? uid;
  }
  return { uid, gid };
}
