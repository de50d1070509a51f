/**
 * JSON Schemas of the OCI image spec v1.1 and Docker image manifest v2 schema 2, written from
 * the specs (image-spec/schema/*.json, docker distribution docs/spec/manifest-v2-2.md).
 * Unknown members are allowed everywhere, as the specs require of readers.
 */
import type { SchemaObject } from 'ajv';
import { MediaType } from '../../media-type.js';
import {
  BASE64_PATTERN,
  PORT_PATTERN,
  URL_PATTERN,
  boolean,
  dateTime,
  digest,
  mapStringString,
  mediaType,
  nullableStringArray,
  size,
  string,
  stringArray,
} from './common.js';

export const platformSchema: SchemaObject = {
  type: 'object',
  required: ['architecture', 'os'],
  properties: {
    architecture: string,
    os: string,
    'os.version': string,
    'os.features': stringArray,
    variant: string,
    features: stringArray,
  },
};

export const descriptorSchema: SchemaObject = {
  type: 'object',
  required: ['mediaType', 'digest', 'size'],
  properties: {
    mediaType,
    digest,
    size,
    urls: { type: 'array', items: { type: 'string', pattern: URL_PATTERN } },
    annotations: mapStringString,
    data: { type: 'string', pattern: BASE64_PATTERN },
    platform: platformSchema,
    artifactType: mediaType,
  },
};

export const imageManifestSchema: SchemaObject = {
  type: 'object',
  required: ['schemaVersion', 'config', 'layers'],
  properties: {
    schemaVersion: { const: 2 },
    mediaType: { const: MediaType.ImageManifest },
    artifactType: mediaType,
    config: descriptorSchema,
    layers: { type: 'array', items: descriptorSchema },
    subject: descriptorSchema,
    annotations: mapStringString,
  },
};

export const imageIndexSchema: SchemaObject = {
  type: 'object',
  required: ['schemaVersion', 'manifests'],
  properties: {
    schemaVersion: { const: 2 },
    mediaType: { const: MediaType.ImageIndex },
    artifactType: mediaType,
    manifests: { type: 'array', items: descriptorSchema },
    subject: descriptorSchema,
    annotations: mapStringString,
  },
};

const duration = { type: 'integer', minimum: 0 };

export const healthcheckSchema: SchemaObject = {
  type: 'object',
  properties: {
    Test: { type: ['array', 'null'], items: string },
    Interval: duration,
    Timeout: duration,
    StartPeriod: duration,
    StartInterval: duration,
    Retries: { type: 'integer', minimum: 0 },
  },
};

const portSet: SchemaObject = {
  type: ['object', 'null'],
  propertyNames: { pattern: PORT_PATTERN },
  additionalProperties: { type: 'object' },
};

export const containerConfigSchema: SchemaObject = {
  // Docker writes `"config": null` for images without one (e.g. some scratch images).
  type: ['object', 'null'],
  properties: {
    User: string,
    ExposedPorts: portSet,
    Env: nullableStringArray,
    Entrypoint: nullableStringArray,
    Cmd: nullableStringArray,
    Volumes: { type: ['object', 'null'], additionalProperties: { type: 'object' } },
    WorkingDir: string,
    Labels: { type: ['object', 'null'], additionalProperties: string },
    StopSignal: string,
    ArgsEscaped: boolean,
    Healthcheck: healthcheckSchema,
    OnBuild: nullableStringArray,
    Shell: nullableStringArray,
    StopTimeout: { type: ['integer', 'null'] },
    Hostname: string,
    Domainname: string,
    AttachStdin: boolean,
    AttachStdout: boolean,
    AttachStderr: boolean,
    Tty: boolean,
    OpenStdin: boolean,
    StdinOnce: boolean,
    Image: string,
    NetworkDisabled: boolean,
    MacAddress: string,
  },
};

export const imageConfigSchema: SchemaObject = {
  type: 'object',
  required: ['architecture', 'os', 'rootfs'],
  properties: {
    created: dateTime,
    author: string,
    architecture: { type: 'string', minLength: 1 },
    os: { type: 'string', minLength: 1 },
    'os.version': string,
    'os.features': stringArray,
    variant: string,
    config: containerConfigSchema,
    rootfs: {
      type: 'object',
      required: ['type', 'diff_ids'],
      properties: {
        type: { const: 'layers' },
        diff_ids: { type: 'array', items: digest },
      },
    },
    history: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          created: dateTime,
          author: string,
          created_by: string,
          comment: string,
          empty_layer: boolean,
        },
      },
    },
    container_config: containerConfigSchema,
  },
};

export const imageLayoutSchema: SchemaObject = {
  type: 'object',
  required: ['imageLayoutVersion'],
  properties: {
    imageLayoutVersion: { const: '1.0.0' },
  },
};

export const dockerManifestSchema: SchemaObject = {
  type: 'object',
  required: ['schemaVersion', 'mediaType', 'config', 'layers'],
  properties: {
    schemaVersion: { const: 2 },
    mediaType: { const: MediaType.DockerManifest },
    config: descriptorSchema,
    layers: { type: 'array', items: descriptorSchema },
  },
};

export const dockerManifestListSchema: SchemaObject = {
  type: 'object',
  required: ['schemaVersion', 'mediaType', 'manifests'],
  properties: {
    schemaVersion: { const: 2 },
    mediaType: { const: MediaType.DockerManifestList },
    manifests: {
      type: 'array',
      items: {
        type: 'object',
        required: ['mediaType', 'digest', 'size', 'platform'],
        properties: {
          mediaType,
          digest,
          size,
          urls: { type: 'array', items: { type: 'string', pattern: URL_PATTERN } },
          annotations: mapStringString,
          platform: platformSchema,
        },
      },
    },
  },
};
