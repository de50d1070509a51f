import { readFile } from 'node:fs/promises';
import { InvalidSpecError } from '../errors.js';
import { resolveInRoot } from './paths.js';

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  /** From /etc/passwd; `/` when the user has no entry. */
  home: string;
}

interface PasswdEntry { name: string; uid: number; gid: number; home: string }
interface GroupEntry { name: string; gid: number; members: string[] }

const MAX_ID = 2 ** 31 - 1;
const NAME = /^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}\$?$/;

async function readLines(root: string, file: string): Promise<string[]> {
  try {
    const text = await readFile(await resolveInRoot(root, file), 'utf8');
    return text.split('\n').slice(0, 100_000).filter((l) => l.trim() !== '' && !l.startsWith('#'));
  } catch {
    return [];
  }
}

async function readPasswd(root: string): Promise<PasswdEntry[]> {
  return (await readLines(root, '/etc/passwd')).flatMap((l) => {
    const f = l.split(':');
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    return f.length >= 4 && Number.isInteger(uid) && Number.isInteger(gid) ? [{ name: f[0] ?? '', uid, gid, home: f[5] || '/' }] : [];
  });
}

async function readGroups(root: string): Promise<GroupEntry[]> {
  return (await readLines(root, '/etc/group')).flatMap((l) => {
    const f = l.split(':');
    const gid = Number(f[2]);
    return f.length >= 3 && Number.isInteger(gid) ? [{ name: f[0] ?? '', gid, members: (f[3] ?? '').split(',').filter(Boolean) }] : [];
  });
}

function numeric(s: string): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  if (n > MAX_ID) throw new InvalidSpecError(`user or group id out of range: ${s}`);
  return n;
}

/**
 * Resolves Docker's `--user` (`name`, `uid`, `name:group`, `uid:gid`) and `--group-add` against the
 * image's /etc/passwd and /etc/group, like runc's libcontainer/user: a name that is not in the
 * files is an error; a number that is not is used as it is (gid 0, home `/`). Supplementary groups
 * are the groups listing the user, plus `groupAdd`.
 */
export async function resolveUser(rootfs: string, user: string | undefined, groupAdd: readonly string[] = []): Promise<ResolvedUser> {
  const spec = user && user !== '' ? user : '0';
  const [userPart = '', groupPart] = spec.split(':', 2);
  if (userPart === '' || (!NAME.test(userPart) && numeric(userPart) === undefined)) {
    throw new InvalidSpecError(`invalid user: ${spec}`);
  }
  const passwd = await readPasswd(rootfs);
  const uidNum = numeric(userPart);
  const entry = uidNum === undefined ? passwd.find((p) => p.name === userPart) : passwd.find((p) => p.uid === uidNum);
  if (!entry && uidNum === undefined) {
    throw new InvalidSpecError(`unable to find user ${userPart}: no matching entries in passwd file`);
  }
  const uid = uidNum ?? (entry as PasswdEntry).uid;
  let gid = entry?.gid ?? 0;
  const groups = await readGroups(rootfs);
  const lookupGroup = (g: string): number => {
    const n = numeric(g);
    if (n !== undefined) return n;
    if (!NAME.test(g)) throw new InvalidSpecError(`invalid group: ${g}`);
    const found = groups.find((x) => x.name === g);
    if (!found) throw new InvalidSpecError(`unable to find group ${g}: no matching entries in group file`);
    return found.gid;
  };
  if (groupPart !== undefined && groupPart !== '') gid = lookupGroup(groupPart);
  const additional = new Set<number>();
  if (entry && groupPart === undefined) {
    for (const g of groups) if (g.members.includes(entry.name)) additional.add(g.gid);
  }
  for (const g of groupAdd) additional.add(lookupGroup(g));
  additional.delete(gid);
  return { uid, gid, additionalGids: [...additional].sort((a, b) => a - b), home: entry?.home ?? '/' };
}
