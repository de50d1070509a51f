import { Ajv, type ErrorObject, type Schema } from 'ajv';
import { InvalidParameterError } from '../errors.js';
import type { BodyValidator } from './context.js';
import type {
  AuthBody,
  ContainerConfig,
  ContainerCreateBody,
  ContainerUpdateBody,
  ExecCreateBody,
  ExecStartBody,
  NetworkConnectBody,
  NetworkCreateBody,
  NetworkDisconnectBody,
  VolumeCreateBody,
} from './types.js';

/*
 * JSON schemas of the request bodies, compiled once. Clients send `null` for many empty fields
 * (the CLI sends `"Cmd":null`, `"Volumes":null`), so most fields are nullable; unknown fields are
 * accepted, as moby's decoder ignores them.
 */

const str = { type: 'string' } as const;
const bool = { type: 'boolean' } as const;
const int = { type: 'integer' } as const;
const nullable = (schema: Record<string, unknown>): Record<string, unknown> => ({
  anyOf: [schema, { type: 'null' }],
});
const strArray = nullable({ type: 'array', items: str });
const strMap = nullable({ type: 'object', additionalProperties: str });
const emptyObjMap = nullable({ type: 'object', additionalProperties: nullable({ type: 'object' }) });

const healthcheck = nullable({
  type: 'object',
  properties: {
    Test: strArray,
    Interval: int,
    Timeout: int,
    StartPeriod: int,
    StartInterval: int,
    Retries: int,
  },
});

const containerConfigProps = {
  Hostname: str,
  Domainname: str,
  User: str,
  AttachStdin: bool,
  AttachStdout: bool,
  AttachStderr: bool,
  ExposedPorts: emptyObjMap,
  Tty: bool,
  OpenStdin: bool,
  StdinOnce: bool,
  Env: strArray,
  Cmd: strArray,
  Healthcheck: healthcheck,
  ArgsEscaped: bool,
  Image: str,
  Volumes: emptyObjMap,
  WorkingDir: str,
  Entrypoint: strArray,
  NetworkDisabled: bool,
  MacAddress: str,
  OnBuild: strArray,
  Labels: strMap,
  StopSignal: str,
  StopTimeout: nullable(int),
  Shell: strArray,
};

const portBindings = nullable({
  type: 'object',
  propertyNames: { pattern: '^[0-9]+(-[0-9]+)?(/(tcp|udp|sctp))?$' },
  additionalProperties: nullable({
    type: 'array',
    items: { type: 'object', properties: { HostIp: str, HostPort: str } },
  }),
});

const restartPolicy = {
  type: 'object',
  properties: {
    Name: { enum: ['', 'no', 'always', 'unless-stopped', 'on-failure'] },
    MaximumRetryCount: { type: 'integer', minimum: 0 },
  },
};

const mountSpec = {
  type: 'object',
  properties: {
    Type: { enum: ['bind', 'volume', 'tmpfs', 'npipe', 'cluster'] },
    Source: str,
    Target: str,
    ReadOnly: bool,
    Consistency: str,
    BindOptions: nullable({ type: 'object' }),
    VolumeOptions: nullable({ type: 'object' }),
    TmpfsOptions: nullable({ type: 'object', properties: { SizeBytes: int, Mode: int } }),
  },
};

const throttleDevices = nullable({
  type: 'array',
  items: { type: 'object', required: ['Path', 'Rate'], properties: { Path: { type: 'string', minLength: 1 }, Rate: { type: 'integer', minimum: 0 } } },
});

const resourceProps = {
  Memory: { type: 'integer', minimum: 0 },
  MemoryReservation: { type: 'integer', minimum: 0 },
  MemorySwap: { type: 'integer', minimum: -1 },
  NanoCpus: { type: 'integer', minimum: 0 },
  CpuShares: { type: 'integer', minimum: 0 },
  CpuPeriod: { type: 'integer', minimum: 0 },
  CpuQuota: int,
  CpusetCpus: str,
  CpusetMems: str,
  PidsLimit: nullable(int),
  BlkioWeight: { type: 'integer', minimum: 0, maximum: 1000 },
  BlkioDeviceReadBps: throttleDevices,
  BlkioDeviceWriteBps: throttleDevices,
  BlkioDeviceReadIOps: throttleDevices,
  BlkioDeviceWriteIOps: throttleDevices,
  MemorySwappiness: nullable({ type: 'integer', minimum: -1, maximum: 100 }),
};

const hostConfig = nullable({
  type: 'object',
  properties: {
    ...resourceProps,
    Binds: strArray,
    ContainerIDFile: str,
    LogConfig: { type: 'object', properties: { Type: str, Config: strMap } },
    NetworkMode: str,
    PortBindings: portBindings,
    RestartPolicy: restartPolicy,
    AutoRemove: bool,
    VolumeDriver: str,
    VolumesFrom: strArray,
    ConsoleSize: nullable({ type: 'array', items: { type: 'integer', minimum: 0 }, maxItems: 2 }),
    CapAdd: strArray,
    CapDrop: strArray,
    Dns: strArray,
    DnsOptions: strArray,
    DnsSearch: strArray,
    ExtraHosts: strArray,
    GroupAdd: strArray,
    IpcMode: str,
    Cgroup: str,
    Links: strArray,
    OomScoreAdj: int,
    PidMode: str,
    Privileged: bool,
    PublishAllPorts: bool,
    ReadonlyRootfs: bool,
    SecurityOpt: strArray,
    Tmpfs: strMap,
    UTSMode: str,
    CgroupnsMode: str,
    UsernsMode: str,
    ShmSize: { type: 'integer', minimum: 0 },
    Sysctls: strMap,
    Runtime: str,
    Init: nullable(bool),
    Ulimits: nullable({
      type: 'array',
      items: { type: 'object', required: ['Name'], properties: { Name: str, Soft: int, Hard: int } },
    }),
    Mounts: nullable({ type: 'array', items: mountSpec }),
    OomKillDisable: nullable(bool),
    Devices: nullable({
      type: 'array',
      items: { type: 'object', required: ['PathOnHost'], properties: { PathOnHost: str, PathInContainer: str, CgroupPermissions: str } },
    }),
    DeviceCgroupRules: strArray,
  },
});

const endpointSettings = nullable({
  type: 'object',
  properties: {
    IPAMConfig: nullable({ type: 'object', properties: { IPv4Address: str, IPv6Address: str } }),
    Links: strArray,
    Aliases: strArray,
    MacAddress: str,
    NetworkID: str,
    DriverOpts: strMap,
    DNSNames: strArray,
  },
});

const schemas = {
  containerCreate: {
    type: 'object',
    properties: {
      ...containerConfigProps,
      HostConfig: hostConfig,
      NetworkingConfig: nullable({
        type: 'object',
        properties: { EndpointsConfig: nullable({ type: 'object', additionalProperties: endpointSettings }) },
      }),
    },
  },
  containerUpdate: {
    type: 'object',
    properties: { ...resourceProps, RestartPolicy: restartPolicy },
  },
  execCreate: {
    type: 'object',
    properties: {
      AttachStdin: bool,
      AttachStdout: bool,
      AttachStderr: bool,
      ConsoleSize: nullable({ type: 'array', items: { type: 'integer', minimum: 0 }, maxItems: 2 }),
      DetachKeys: str,
      Tty: bool,
      Env: strArray,
      Cmd: { type: 'array', items: str, minItems: 1 },
      Privileged: bool,
      User: str,
      WorkingDir: str,
    },
    required: ['Cmd'],
  },
  execStart: {
    type: 'object',
    properties: {
      Detach: bool,
      Tty: bool,
      ConsoleSize: nullable({ type: 'array', items: { type: 'integer', minimum: 0 }, maxItems: 2 }),
    },
  },
  auth: {
    type: 'object',
    properties: {
      username: str,
      password: str,
      email: str,
      serveraddress: str,
      identitytoken: str,
      registrytoken: str,
      auth: str,
    },
  },
  networkCreate: {
    type: 'object',
    required: ['Name'],
    properties: {
      Name: { type: 'string', minLength: 1 },
      CheckDuplicate: bool,
      Driver: str,
      Scope: str,
      Internal: bool,
      Attachable: bool,
      Ingress: bool,
      EnableIPv6: nullable(bool),
      IPAM: nullable({
        type: 'object',
        properties: {
          Driver: str,
          Config: nullable({
            type: 'array',
            items: { type: 'object', properties: { Subnet: str, IPRange: str, Gateway: str, AuxiliaryAddresses: strMap } },
          }),
          Options: strMap,
        },
      }),
      Options: strMap,
      Labels: strMap,
    },
  },
  networkConnect: {
    type: 'object',
    required: ['Container'],
    properties: { Container: { type: 'string', minLength: 1 }, EndpointConfig: endpointSettings },
  },
  networkDisconnect: {
    type: 'object',
    required: ['Container'],
    properties: { Container: { type: 'string', minLength: 1 }, Force: bool },
  },
  volumeCreate: {
    type: 'object',
    properties: { Name: str, Driver: str, DriverOpts: strMap, Labels: strMap },
  },
  stringArray: { type: 'array', items: str },
  stringMap: { type: 'object', additionalProperties: str },
} satisfies Record<string, Schema>;

const ajv = new Ajv({ allErrors: false, strict: false });

function describe(errors: ErrorObject[] | null | undefined): string {
  const e = errors?.[0];
  if (!e) return 'invalid request body';
  const where = e.instancePath === '' ? 'body' : e.instancePath;
  if (e.keyword === 'required') return `${where}: missing required field ${String((e.params as { missingProperty?: string }).missingProperty)}`;
  if (e.keyword === 'enum') return `${where}: must be one of ${JSON.stringify((e.params as { allowedValues?: unknown }).allowedValues)}`;
  return `${where} ${e.message ?? 'is invalid'}`;
}

function compile<T>(schema: Schema, what: string): BodyValidator<T> {
  const validate = ajv.compile(schema);
  return (value: unknown): T => {
    if (!validate(value)) throw new InvalidParameterError(`invalid ${what}: ${describe(validate.errors)}`);
    return value as T;
  };
}

export const validateContainerCreate = compile<ContainerCreateBody>(schemas.containerCreate, 'container config');
export const validateContainerUpdate = compile<ContainerUpdateBody>(schemas.containerUpdate, 'update config');
export const validateExecCreate = compile<ExecCreateBody>(schemas.execCreate, 'exec config');
export const validateExecStart = compile<ExecStartBody>(schemas.execStart, 'exec start config');
export const validateAuth = compile<AuthBody>(schemas.auth, 'auth config');
export const validateNetworkCreate = compile<NetworkCreateBody>(schemas.networkCreate, 'network config');
export const validateNetworkConnect = compile<NetworkConnectBody>(schemas.networkConnect, 'network connect config');
export const validateNetworkDisconnect = compile<NetworkDisconnectBody>(schemas.networkDisconnect, 'network disconnect config');
export const validateVolumeCreate = compile<VolumeCreateBody>(schemas.volumeCreate, 'volume config');
export const validateStringArray = compile<string[]>(schemas.stringArray, 'string array');
export const validateStringMap = compile<Record<string, string>>(schemas.stringMap, 'string map');

/** `POST /commit` body: a container config whose set fields win over the container's (may be `null`). */
export const validateCommitConfig = compile<ContainerConfig | null>(
  nullable({ type: 'object', properties: containerConfigProps }),
  'commit config',
);
