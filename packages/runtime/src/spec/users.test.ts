import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveUser } from './users.js';

describe('resolveUser', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'berth-users-'));
    await mkdir(path.join(root, 'etc'));
    await writeFile(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nberth:x:1000:1000::/home/berth:/bin/sh\n');
    await writeFile(path.join(root, 'etc/group'), 'root:x:0:\nberth:x:1000:\nwheel:x:10:berth\naudio:x:29:berth,other\n');
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('resolves names, numbers and groups from the image', async () => {
    expect(await resolveUser(root, undefined)).toEqual({ uid: 0, gid: 0, additionalGids: [], home: '/root' });
    expect(await resolveUser(root, 'berth')).toEqual({ uid: 1000, gid: 1000, additionalGids: [10, 29], home: '/home/berth' });
    expect(await resolveUser(root, 'berth:wheel')).toMatchObject({ uid: 1000, gid: 10, additionalGids: [] });
    expect(await resolveUser(root, '1234:5678')).toEqual({ uid: 1234, gid: 5678, additionalGids: [], home: '/' });
    expect(await resolveUser(root, '1000')).toMatchObject({ uid: 1000, gid: 1000, home: '/home/berth' });
    expect(await resolveUser(root, 'root', ['audio', '4242'])).toMatchObject({ additionalGids: [29, 4242] });
    await expect(resolveUser(root, 'nobody-here')).rejects.toThrow(/unable to find user nobody-here/);
    await expect(resolveUser(root, 'berth:nogroup')).rejects.toThrow(/unable to find group nogroup/);
    await expect(resolveUser(root, '../../x')).rejects.toThrow(/invalid user/);
  });

  it('never reads the host /etc/passwd through a symlink', async () => {
    const evil = await mkdtemp(path.join(tmpdir(), 'berth-users-evil-'));
    try {
      await mkdir(path.join(evil, 'etc'));
      await symlink('/etc/passwd', path.join(evil, 'etc/passwd')); // resolves to <evil>/etc/passwd = itself → loop/absent
      await expect(resolveUser(evil, 'root')).rejects.toThrow(/unable to find user root/);
    } finally {
      await rm(evil, { recursive: true, force: true });
    }
  });
});
