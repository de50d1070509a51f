/**
 * JSON Schemas of the OCI runtime spec v1.2 `config.json` (Linux) and `state`, written from
 * runtime-spec/schema (config-schema.json, config-linux.json, defs.json, defs-linux.json,
 * state-schema.json), extended with the members added since (time namespace, newer seccomp
 * actions, cgroup v2 `unified`, idmapped mounts). Unknown members are allowed.
 */
import type { SchemaObject } from 'ajv';
import {
  CAPABILITY_PATTERN,
  RLIMIT_PATTERN,
  SECCOMP_ARCH_PATTERN,
  absolutePath,
  boolean,
  int32,
  int64,
  mapStringString,
  string,
  stringArray,
  uint32,
  uint64,
} from './common.js';

const idMapping: SchemaObject = {
  type: 'object',
  required: ['containerID', 'hostID', 'size'],
  properties: { containerID: uint32, hostID: uint32, size: uint32 },
};
const idMappings: SchemaObject = { type: 'array', items: idMapping };

const hook: SchemaObject = {
  type: 'object',
  required: ['path'],
  properties: {
    path: absolutePath,
    args: stringArray,
    env: stringArray,
    timeout: { type: 'integer', minimum: 1 },
  },
};
const hooks: SchemaObject = { type: 'array', items: hook };

const mount: SchemaObject = {
  type: 'object',
  required: ['destination'],
  properties: {
    destination: { type: 'string', minLength: 1 },
    source: string,
    type: string,
    options: stringArray,
    uidMappings: idMappings,
    gidMappings: idMappings,
  },
};

const capabilityList: SchemaObject = { type: 'array', items: { type: 'string', pattern: CAPABILITY_PATTERN } };

const processSchema: SchemaObject = {
  type: 'object',
  required: ['cwd', 'user'],
  properties: {
    terminal: boolean,
    consoleSize: {
      type: 'object',
      required: ['height', 'width'],
      properties: { height: uint64, width: uint64 },
    },
    user: {
      type: 'object',
      required: ['uid', 'gid'],
      properties: {
        uid: uint32,
        gid: uint32,
        umask: uint32,
        additionalGids: { type: 'array', items: uint32 },
        username: string,
      },
    },
    args: stringArray,
    commandLine: string,
    env: stringArray,
    cwd: absolutePath,
    capabilities: {
      type: 'object',
      properties: {
        bounding: capabilityList,
        effective: capabilityList,
        inheritable: capabilityList,
        permitted: capabilityList,
        ambient: capabilityList,
      },
    },
    rlimits: {
      type: 'array',
      items: {
        type: 'object',
        required: ['type', 'soft', 'hard'],
        properties: {
          type: { type: 'string', pattern: RLIMIT_PATTERN },
          soft: uint64,
          hard: uint64,
        },
      },
    },
    noNewPrivileges: boolean,
    apparmorProfile: string,
    oomScoreAdj: { type: 'integer', minimum: -1000, maximum: 1000 },
    selinuxLabel: string,
    scheduler: {
      type: 'object',
      required: ['policy'],
      properties: {
        policy: {
          enum: ['SCHED_OTHER', 'SCHED_FIFO', 'SCHED_RR', 'SCHED_BATCH', 'SCHED_ISO', 'SCHED_IDLE', 'SCHED_DEADLINE'],
        },
        nice: int32,
        priority: int32,
        flags: stringArray,
        runtime: uint64,
        deadline: uint64,
        period: uint64,
      },
    },
    ioPriority: {
      type: 'object',
      required: ['class'],
      properties: {
        class: { enum: ['IOPRIO_CLASS_RT', 'IOPRIO_CLASS_BE', 'IOPRIO_CLASS_IDLE'] },
        priority: { type: 'integer', minimum: 0, maximum: 7 },
      },
    },
  },
};

const major: SchemaObject = int64;
const minor: SchemaObject = int64;

const device: SchemaObject = {
  type: 'object',
  required: ['type', 'path'],
  properties: {
    type: { enum: ['c', 'b', 'u', 'p'] },
    path: absolutePath,
    major,
    minor,
    fileMode: { type: 'integer', minimum: 0, maximum: 0o7777 },
    uid: uint32,
    gid: uint32,
  },
};

const deviceCgroup: SchemaObject = {
  type: 'object',
  required: ['allow'],
  properties: {
    allow: boolean,
    type: { enum: ['a', 'b', 'c'] },
    major: { type: ['integer', 'null'] },
    minor: { type: ['integer', 'null'] },
    access: { type: 'string', pattern: '^[rwm]{0,3}$' },
  },
};

const weight: SchemaObject = { type: 'integer', minimum: 0, maximum: 1000 };
const weightDevice: SchemaObject = {
  type: 'object',
  required: ['major', 'minor'],
  properties: { major, minor, weight, leafWeight: weight },
};
const throttleDevice: SchemaObject = {
  type: 'object',
  required: ['major', 'minor', 'rate'],
  properties: { major, minor, rate: uint64 },
};
const throttleDevices: SchemaObject = { type: 'array', items: throttleDevice };

const resources: SchemaObject = {
  type: 'object',
  properties: {
    devices: { type: 'array', items: deviceCgroup },
    memory: {
      type: 'object',
      properties: {
        limit: int64,
        reservation: int64,
        swap: int64,
        kernel: int64,
        kernelTCP: int64,
        swappiness: { type: 'integer', minimum: 0, maximum: 100 },
        disableOOMKiller: boolean,
        useHierarchy: boolean,
        checkBeforeUpdate: boolean,
      },
    },
    cpu: {
      type: 'object',
      properties: {
        shares: uint64,
        quota: int64,
        burst: uint64,
        period: uint64,
        realtimeRuntime: int64,
        realtimePeriod: uint64,
        cpus: string,
        mems: string,
        idle: int64,
      },
    },
    pids: {
      type: 'object',
      required: ['limit'],
      properties: { limit: int64 },
    },
    blockIO: {
      type: 'object',
      properties: {
        weight,
        leafWeight: weight,
        weightDevice: { type: 'array', items: weightDevice },
        throttleReadBpsDevice: throttleDevices,
        throttleWriteBpsDevice: throttleDevices,
        throttleReadIOPSDevice: throttleDevices,
        throttleWriteIOPSDevice: throttleDevices,
      },
    },
    hugepageLimits: {
      type: 'array',
      items: {
        type: 'object',
        required: ['pageSize', 'limit'],
        properties: { pageSize: string, limit: uint64 },
      },
    },
    network: {
      type: 'object',
      properties: {
        classID: uint32,
        priorities: {
          type: 'array',
          items: {
            type: 'object',
            required: ['name', 'priority'],
            properties: { name: string, priority: uint32 },
          },
        },
      },
    },
    rdma: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        properties: { hcaHandles: uint32, hcaObjects: uint32 },
      },
    },
    unified: mapStringString,
  },
};

const seccompAction: SchemaObject = {
  enum: [
    'SCMP_ACT_KILL',
    'SCMP_ACT_KILL_PROCESS',
    'SCMP_ACT_KILL_THREAD',
    'SCMP_ACT_TRAP',
    'SCMP_ACT_ERRNO',
    'SCMP_ACT_TRACE',
    'SCMP_ACT_ALLOW',
    'SCMP_ACT_LOG',
    'SCMP_ACT_NOTIFY',
  ],
};

const seccomp: SchemaObject = {
  type: 'object',
  required: ['defaultAction'],
  properties: {
    defaultAction: seccompAction,
    defaultErrnoRet: uint32,
    architectures: { type: 'array', items: { type: 'string', pattern: SECCOMP_ARCH_PATTERN } },
    flags: stringArray,
    listenerPath: string,
    listenerMetadata: string,
    syscalls: {
      type: 'array',
      items: {
        type: 'object',
        required: ['names', 'action'],
        properties: {
          names: { type: 'array', minItems: 1, items: string },
          action: seccompAction,
          errnoRet: uint32,
          args: {
            type: 'array',
            items: {
              type: 'object',
              required: ['index', 'value', 'op'],
              properties: {
                index: uint32,
                value: uint64,
                valueTwo: uint64,
                op: {
                  enum: ['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'],
                },
              },
            },
          },
        },
      },
    },
  },
};

const linux: SchemaObject = {
  type: 'object',
  properties: {
    uidMappings: idMappings,
    gidMappings: idMappings,
    sysctl: mapStringString,
    resources,
    cgroupsPath: string,
    namespaces: {
      type: 'array',
      items: {
        type: 'object',
        required: ['type'],
        properties: {
          type: { enum: ['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time'] },
          path: absolutePath,
        },
      },
    },
    devices: { type: 'array', items: device },
    seccomp,
    rootfsPropagation: {
      enum: ['private', 'shared', 'slave', 'unbindable', 'rprivate', 'rshared', 'rslave', 'runbindable'],
    },
    maskedPaths: { type: 'array', items: absolutePath },
    readonlyPaths: { type: 'array', items: absolutePath },
    mountLabel: string,
    intelRdt: {
      type: 'object',
      properties: {
        closID: string,
        l3CacheSchema: string,
        memBwSchema: { type: 'string', pattern: '^MB:[^\\n]*$' },
        enableCMT: boolean,
        enableMBM: boolean,
      },
    },
    personality: {
      type: 'object',
      required: ['domain'],
      properties: { domain: { enum: ['LINUX', 'LINUX32'] }, flags: stringArray },
    },
    timeOffsets: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        properties: { secs: int64, nanosecs: uint32 },
      },
    },
  },
};

export const runtimeSpecSchema: SchemaObject = {
  type: 'object',
  required: ['ociVersion'],
  properties: {
    ociVersion: { type: 'string', pattern: '^[0-9]+\\.[0-9]+\\.[0-9]+' },
    process: processSchema,
    root: {
      type: 'object',
      required: ['path'],
      properties: { path: { type: 'string', minLength: 1 }, readonly: boolean },
    },
    hostname: string,
    domainname: string,
    mounts: { type: 'array', items: mount },
    hooks: {
      type: 'object',
      properties: {
        prestart: hooks,
        createRuntime: hooks,
        createContainer: hooks,
        startContainer: hooks,
        poststart: hooks,
        poststop: hooks,
      },
    },
    annotations: mapStringString,
    linux,
  },
};

export const runtimeStateSchema: SchemaObject = {
  type: 'object',
  required: ['ociVersion', 'id', 'status', 'bundle'],
  properties: {
    ociVersion: string,
    id: { type: 'string', minLength: 1 },
    status: { enum: ['creating', 'created', 'running', 'stopped', 'paused'] },
    pid: { type: 'integer', minimum: 0 },
    bundle: string,
    annotations: mapStringString,
    rootfs: string,
    created: string,
    owner: string,
  },
};

