import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContainerNetworkSettings, Mount, MountPoint } from '@berth/runtime';
import type { ContainerConfig, HostConfig, NetworkingConfig } from '../api/types.js';
import { ConflictError, NoSuchContainerError, InvalidParameterError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';

export interface HealthLogEntry {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

export interface HealthState {
  Status: 'starting' | 'healthy' | 'unhealthy' | 'none';
  FailingStreak: number;
  Log: HealthLogEntry[];
}

/** Docker's State object, as inspect returns it. */
export interface ContainerState {
  Status: 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
  Health?: HealthState;
}

export type { MountPoint };

/** What the daemon persists per container (`<data-root>/containers/<id>/config.v2.json`). */
export interface ContainerRecord {
  Id: string;
  Name: string;
  Created: string;
  Path: string;
  Args: string[];
  Config: ContainerConfig;
  HostConfig: HostConfig;
  NetworkingConfig: NetworkingConfig;
  /** The image ID (sha256:…). */
  Image: string;
  State: ContainerState;
  RestartCount: number;
  /** True when the user stopped it (so `unless-stopped` and `always` do not restart it on daemon start). */
  HasBeenManuallyStopped: boolean;
  /** True once the runtime container exists for the current run. */
  RuntimeCreated: boolean;
  /** Mount points as inspect shows them. */
  Mounts: MountPoint[];
  /** The same mounts in OCI form, for the runtime spec (prepared at create by the volume store). */
  OciMounts: Mount[];
  /** The network manager's settings of the current run (null while not running). */
  NetworkSettings: ContainerNetworkSettings | null;
  LogPath: string;
  ResolvConfPath: string;
  HostnamePath: string;
  HostsPath: string;
  Driver: string;
  Platform: string;
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

/**
 * The registry of containers by ID and name. Every change is written atomically before the call
 * returns, so a SIGKILLed daemon finds what it last acknowledged.
 */
export class ContainerStore {
  readonly #root: string;
  readonly #byId = new Map<string, ContainerRecord>();
  readonly #byName = new Map<string, string>();
  /** Names reserved by a create in flight, so two concurrent creates cannot take one name. */
  readonly #reserved = new Set<string>();

  private constructor(root: string) {
    this.#root = root;
  }

  static async open(root: string): Promise<ContainerStore> {
    const store = new ContainerStore(root);
    let entries: string[] = [];
    try {
      entries = await readdir(root);
    } catch {
      entries = [];
    }
    for (const id of entries) {
      if (!/^[0-9a-f]{64}$/.test(id)) continue;
      try {
        const record = JSON.parse(await readFile(join(root, id, 'config.v2.json'), 'utf8')) as ContainerRecord;
        store.#byId.set(record.Id, record);
        store.#byName.set(record.Name, record.Id);
      } catch {
        // A directory without a readable record is a create that never finished; ignore it.
      }
    }
    return store;
  }

  dir(id: string): string {
    return join(this.#root, id);
  }

  all(): ContainerRecord[] {
    return [...this.#byId.values()];
  }

  /** Full ID, name (with or without `/`) or unique ID prefix; 404 "No such container". */
  get(ref: string): ContainerRecord {
    const found = this.find(ref);
    if (!found) throw new NoSuchContainerError(ref);
    return found;
  }

  find(ref: string): ContainerRecord | undefined {
    if (ref === '') return undefined;
    const byId = this.#byId.get(ref);
    if (byId) return byId;
    const name = ref.startsWith('/') ? ref : `/${ref}`;
    const byName = this.#byName.get(name);
    if (byName) return this.#byId.get(byName);
    if (!/^[0-9a-f]+$/.test(ref)) return undefined;
    const matches = [...this.#byId.keys()].filter((id) => id.startsWith(ref));
    if (matches.length > 1) throw new InvalidParameterError(`multiple IDs found with provided prefix: ${ref}`);
    return matches[0] === undefined ? undefined : this.#byId.get(matches[0]);
  }

  /** Reserves `/name` for a container being created; 409 when taken. */
  reserveName(name: string, id: string): void {
    const existing = this.#byName.get(name);
    if (existing !== undefined || this.#reserved.has(name)) {
      const holder = existing ?? 'another container being created';
      throw new ConflictError(
        `Conflict. The container name "${name}" is already in use by container "${holder}". You have to remove (or rename) that container to be able to reuse that name.`,
      );
    }
    this.#reserved.add(name);
    void id;
  }

  releaseName(name: string): void {
    this.#reserved.delete(name);
  }

  async add(record: ContainerRecord): Promise<void> {
    await this.save(record);
    this.#reserved.delete(record.Name);
    this.#byId.set(record.Id, record);
    this.#byName.set(record.Name, record.Id);
  }

  async save(record: ContainerRecord): Promise<void> {
    await writeFileAtomic(join(this.dir(record.Id), 'config.v2.json'), JSON.stringify(record));
  }

  async rename(record: ContainerRecord, newName: string): Promise<void> {
    const oldName = record.Name;
    if (oldName === newName) return;
    this.reserveName(newName, record.Id);
    record.Name = newName;
    try {
      await this.save(record);
    } catch (err) {
      record.Name = oldName;
      this.#reserved.delete(newName);
      throw err;
    }
    this.#reserved.delete(newName);
    this.#byName.delete(oldName);
    this.#byName.set(newName, record.Id);
  }

  async remove(record: ContainerRecord): Promise<void> {
    this.#byId.delete(record.Id);
    if (this.#byName.get(record.Name) === record.Id) this.#byName.delete(record.Name);
    await rm(this.dir(record.Id), { recursive: true, force: true });
  }
}
