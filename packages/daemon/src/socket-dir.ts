import { chmod, chown } from 'node:fs/promises';

/**
 * Lets members of the socket's group traverse (not list) the directory holding the API socket:
 * mode 0710, owner root, group `gid`. The socket itself stays 0660 root:<group>.
 */
export async function shareDirWithGroup(dir: string, gid: number): Promise<void> {
  await chown(dir, 0, gid);
  await chmod(dir, 0o710);
}
