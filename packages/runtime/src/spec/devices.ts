import type { Dirent } from 'node:fs';
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { InvalidSpecError } from '../errors.js';
import type { DeviceMapping } from './types.js';

/** One entry of config.json's `linux.devices`: a node the OCI runtime creates in the container. */
export interface OciDevice {
  path: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

/** One entry of `linux.resources.devices` (a device cgroup rule; absent major/minor = any). */
export interface OciDeviceRule {
  allow: boolean;
  type?: string;
  major?: number;
  minor?: number;
  access: string;
}

/** Linux's split of a dev_t (glibc's gnu_dev_major / gnu_dev_minor). */
export function deviceMajor(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & 0xfffff000n));
}

export function deviceMinor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & 0xffffff00n));
}

/** Docker's ValidDeviceMode: one to three of r, w, m, none twice. */
export function parseCgroupPermissions(value: string | undefined, where: string): string {
  const p = value === undefined || value === '' ? 'rwm' : value;
  if (!/^[rwm]{1,3}$/.test(p) || new Set(p).size !== p.length) {
    throw new InvalidSpecError(`invalid device permissions ${JSON.stringify(p)} for ${where}: use one to three of r, w, m`);
  }
  return p;
}

const RULE = /^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$/;

/** `--device-cgroup-rule "c 1:3 rwm"` (Docker's regular expression; `*` is any number). */
export function parseDeviceCgroupRule(rule: string): OciDeviceRule {
  const m = RULE.exec(rule.trim());
  if (!m || new Set(m[4]).size !== (m[4] ?? '').length) {
    throw new InvalidSpecError(`invalid device cgroup rule ${JSON.stringify(rule)}: expected "<a|b|c> <major|*>:<minor|*> <rwm>"`);
  }
  const [, type, major, minor, access] = m as unknown as [string, string, string, string, string];
  return {
    allow: true,
    type,
    ...(major === '*' ? {} : { major: Number(major) }),
    ...(minor === '*' ? {} : { minor: Number(minor) }),
    access,
  };
}

/** A device node at `file`, or undefined when it is something else (a symlink is not followed). */
async function deviceAt(file: string, containerPath: string, access: string): Promise<{ device: OciDevice; rule: OciDeviceRule } | undefined> {
  const st = await lstat(file, { bigint: true });
  const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : undefined;
  if (!type) return undefined;
  const major = deviceMajor(st.rdev);
  const minor = deviceMinor(st.rdev);
  return {
    device: { path: containerPath, type, major, minor, fileMode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid) },
    rule: { allow: true, type, major, minor, access },
  };
}

/** Walking a huge tree (`--device /`) is a mistake, not a request: stop and say so. */
const MAX_WALKED = 10_000;

/**
 * What `--device <PathOnHost>[:<PathInContainer>[:<permissions>]]` means, as Docker computes it
 * (moby daemon/pkg/oci DevicesFromPath): the host path is resolved if it is a symlink; a character
 * or block device becomes one node in the container (its type, major:minor, mode, uid and gid from
 * the host) and one device cgroup rule with the permissions (default `rwm`); a directory adds every
 * device node below it (symlinks inside are not followed), at the same relative paths under
 * PathInContainer. Throws InvalidSpecError naming the path when it does not exist, is neither a
 * device nor a directory holding devices, or the container path is not absolute.
 */
export async function devicesFromMapping(mapping: DeviceMapping): Promise<{ devices: OciDevice[]; rules: OciDeviceRule[] }> {
  const onHost = mapping.PathOnHost;
  if (!onHost || !onHost.startsWith('/')) throw new InvalidSpecError(`device path on the host must be absolute: ${JSON.stringify(onHost ?? '')}`);
  const inContainer = path.posix.normalize(mapping.PathInContainer || onHost);
  if (!inContainer.startsWith('/') || inContainer === '/') {
    throw new InvalidSpecError(`device path in the container must be an absolute file path: ${JSON.stringify(mapping.PathInContainer)} (for ${onHost})`);
  }
  const access = parseCgroupPermissions(mapping.CgroupPermissions, onHost);
  let resolved: string;
  try {
    resolved = await realpath(onHost);
  } catch (cause) {
    throw new InvalidSpecError(`no such device on the host: ${onHost}`, { cause });
  }
  const single = await deviceAt(resolved, inContainer, access);
  if (single) return { devices: [single.device], rules: [single.rule] };
  if (!(await stat(resolved)).isDirectory()) {
    throw new InvalidSpecError(`not a device: ${onHost} is neither a character or block device nor a directory of devices`);
  }
  const devices: OciDevice[] = [];
  const rules: OciDeviceRule[] = [];
  let walked = 0;
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (++walked > MAX_WALKED) throw new InvalidSpecError(`device directory ${onHost} holds more than ${MAX_WALKED} entries; name the devices instead`);
      const file = path.join(dir, e.name);
      if (e.isDirectory()) await walk(file);
      else if (e.isCharacterDevice() || e.isBlockDevice()) {
        const found = await deviceAt(file, path.posix.join(inContainer, path.relative(resolved, file)), access).catch(() => undefined);
        if (found) {
          devices.push(found.device);
          rules.push(found.rule);
        }
      }
    }
  };
  await walk(resolved);
  if (devices.length === 0) throw new InvalidSpecError(`not a device: ${onHost} is a directory with no device nodes below it`);
  return { devices, rules };
}

/** Directories under /dev that hold no devices of the host's own (runc libcontainer/devices GetDevices). */
const SKIPPED_DEVICE_DIRS = new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev']);

const byName = (a: { name: string }, b: { name: string }): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** A file that went away or that this process may not look at is skipped, not an error. */
function skippable(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'EACCES' || code === 'EPERM';
}

/**
 * The host's device nodes, as a `--privileged` container gets them (Docker: containerd's
 * oci.HostDevices, the same walk as runc's libcontainer/devices GetDevices): every character and
 * block device below `root`, in name order, with its type, major:minor, permission bits, uid and
 * gid; the directories pts, shm, fd, mqueue, .lxc, .lxd-mounts and .udev are not entered, a
 * non-directory named `console` is left out (the runtime gives the container its own), and
 * symlinks, fifos, sockets and regular files are not devices. Entries that vanish during the walk
 * or that this process may not read are skipped. Each device's path is its path below `root`
 * under /dev (the host path itself when `root` is /dev). Throws when `root` cannot be read.
 */
export async function hostDevices(root = '/dev'): Promise<OciDevice[]> {
  const out: OciDevice[] = [];
  const walk = async (dir: string, top: boolean): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if (!top && skippable(error)) return;
      throw new Error(`cannot list the host's devices in ${dir}: ${(error as Error).message}`, { cause: error });
    }
    for (const e of entries.sort(byName)) {
      const file = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (!SKIPPED_DEVICE_DIRS.has(e.name)) await walk(file, false);
        continue;
      }
      if (e.name === 'console' || !(e.isCharacterDevice() || e.isBlockDevice())) continue;
      let found: Awaited<ReturnType<typeof deviceAt>>;
      try {
        found = await deviceAt(file, path.posix.join('/dev', path.relative(root, file)), 'rwm');
      } catch (error) {
        if (skippable(error)) continue;
        throw error;
      }
      if (found) out.push(found.device);
    }
  };
  await walk(root, true);
  return out;
}

/**
 * Every `--device` and `--device-cgroup-rule` of a container: the nodes to create (one per
 * container path; a later mapping of the same path wins) and the cgroup rules to append after the
 * defaults (deny all, allow the standard devices).
 */
export async function resolveDevices(mappings: readonly DeviceMapping[], cgroupRules: readonly string[]): Promise<{ devices: OciDevice[]; rules: OciDeviceRule[] }> {
  const byPath = new Map<string, OciDevice>();
  const rules: OciDeviceRule[] = [];
  for (const m of mappings) {
    const r = await devicesFromMapping(m);
    for (const d of r.devices) {
      byPath.delete(d.path);
      byPath.set(d.path, d);
    }
    rules.push(...r.rules);
  }
  for (const rule of cgroupRules) rules.push(parseDeviceCgroupRule(rule));
  return { devices: [...byPath.values()], rules };
}
