import { describe, expect, it } from 'vitest';
import { parseHost, resolveHost } from './host.js';
import { splitReference } from './reference.js';
import { compareVersions, encodeFilters, encodeQuery, splitForPull } from '../client.js';
import { encodeRegistryAuth, authKeyFor, resolveAuth } from '../auth/docker-config.js';

describe('daemon addresses', () => {
  it('parses unix, tcp and https URLs', () => {
    expect(parseHost('unix:///run/berth/berth.sock')).toEqual({ kind: 'unix', socketPath: '/run/berth/berth.sock' });
    expect(parseHost('/var/run/docker.sock')).toEqual({ kind: 'unix', socketPath: '/var/run/docker.sock' });
    expect(parseHost('tcp://127.0.0.1:2375')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 2375 });
    expect(parseHost('tcp://[::1]:2376', { verify: true })).toEqual({ kind: 'tcp', host: '::1', port: 2376, tls: { verify: true } });
    expect(parseHost('https://example.test')).toMatchObject({ kind: 'tcp', port: 2376, tls: { verify: true } });
    expect(() => parseHost('ftp://x')).toThrow(/unsupported scheme/);
    expect(() => parseHost('unix://relative')).toThrow(/must be absolute/);
  });

  it('prefers the argument, then BERTH_HOST, then DOCKER_HOST, then berthd’s socket', () => {
    expect(resolveHost(undefined, {}).url).toBe('unix:///run/berth/berth.sock');
    expect(resolveHost(undefined, { DOCKER_HOST: 'unix:///d.sock' }).url).toBe('unix:///d.sock');
    expect(resolveHost(undefined, { DOCKER_HOST: 'unix:///d.sock', BERTH_HOST: 'unix:///b.sock' }).url).toBe('unix:///b.sock');
    expect(resolveHost('tcp://h:1', { BERTH_HOST: 'unix:///b.sock' }).url).toBe('tcp://h:1');
    expect(() => resolveHost('tcp://h:1', { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/nonexistent' })).toThrow(/ca\.pem cannot be read/);
  });
});

describe('requests', () => {
  it('encodes queries and filters like the docker CLI', () => {
    expect(encodeQuery({ all: true, limit: 3, t: ['a:1', 'b:2'], skip: undefined })).toBe('?all=1&limit=3&t=a%3A1&t=b%3A2');
    expect(encodeFilters({ label: ['a=b'], status: 'running' })).toBe('{"label":{"a=b":true},"status":{"running":true}}');
    expect(encodeFilters({})).toBeUndefined();
  });

  it('negotiates versions numerically', () => {
    expect(compareVersions('1.9', '1.44')).toBe(-1);
    expect(compareVersions('1.44', '1.44')).toBe(0);
    expect(compareVersions('1.50', '1.44')).toBe(1);
  });

  it('splits references for pulls the way the docker CLI does', () => {
    expect(splitForPull('busybox')).toEqual({ fromImage: 'docker.io/library/busybox', tag: 'latest' });
    expect(splitForPull('localhost:5000/x/y:2')).toEqual({ fromImage: 'localhost:5000/x/y', tag: '2' });
    expect(splitForPull(`alpine@sha256:${'a'.repeat(64)}`)).toEqual({ fromImage: 'docker.io/library/alpine', tag: `sha256:${'a'.repeat(64)}` });
    expect(splitReference('ghcr.io/o/r')).toEqual({ domain: 'ghcr.io', path: 'o/r', tag: 'latest' });
  });
});

describe('registry auth', () => {
  it('encodes X-Registry-Auth as padded base64url JSON', () => {
    expect(encodeRegistryAuth(undefined)).toBe('e30=');
    const encoded = encodeRegistryAuth({ username: 'alice', password: 'p?>~', serveraddress: 'localhost:5000' });
    expect(encoded).not.toMatch(/[+/]/);
    expect(JSON.parse(Buffer.from(encoded.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString())).toEqual({ username: 'alice', password: 'p?>~', serveraddress: 'localhost:5000' });
  });

  it('reads inline credentials from config.json, keyed like docker', async () => {
    expect(authKeyFor('docker.io')).toBe('https://index.docker.io/v1/');
    expect(authKeyFor('https://localhost:5000/v2/')).toBe('localhost:5000');
    const config = { auths: { 'localhost:5000': { auth: Buffer.from('bob:s3:cret').toString('base64') } } };
    expect(await resolveAuth('localhost:5000', config)).toEqual({ serveraddress: 'localhost:5000', username: 'bob', password: 's3:cret' });
    expect(await resolveAuth('other:1', config)).toBeUndefined();
  });

  it('asks a credential helper (docker-credential-<name>) when one is configured', async () => {
    const { mkdtemp, writeFile, chmod, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'berth-cred-'));
    const oldPath = process.env.PATH;
    try {
      const helper = join(dir, 'docker-credential-berthtest');
      await writeFile(helper, '#!/bin/sh\nread server\necho "{\\"ServerURL\\":\\"$server\\",\\"Username\\":\\"helper-user\\",\\"Secret\\":\\"helper-secret\\"}"\n');
      await chmod(helper, 0o755);
      process.env.PATH = `${dir}:${oldPath}`;
      expect(await resolveAuth('registry.test', { credHelpers: { 'registry.test': 'berthtest' } })).toEqual({ username: 'helper-user', password: 'helper-secret', serveraddress: 'registry.test' });
    } finally {
      process.env.PATH = oldPath;
      await rm(dir, { recursive: true, force: true });
    }
  });
});
