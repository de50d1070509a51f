import { describe, expect, it } from 'vitest';
import { buildCreateBody, parseDetachKeys, parseDuration, parseMount, parsePublish } from './run.js';
import { splitCpArg } from './container.js';
import { ellipsis, formatPorts, parseEnvFile, parseFilters, parseTimestamp } from './shared.js';

describe('docker flag parsing', () => {
  it('parses -p forms', () => {
    expect(parsePublish(['8080:80', '127.0.0.1::53/udp', '443', '[::1]:9000:9000'])).toEqual({
      exposed: { '80/tcp': {}, '53/udp': {}, '443/tcp': {}, '9000/tcp': {} },
      bindings: {
        '80/tcp': [{ HostIp: '', HostPort: '8080' }],
        '53/udp': [{ HostIp: '127.0.0.1', HostPort: '' }],
        '443/tcp': [{ HostIp: '', HostPort: '' }],
        '9000/tcp': [{ HostIp: '::1', HostPort: '9000' }],
      },
    });
    expect(() => parsePublish(['a:b'])).toThrow(/ports must be numbers/);
  });

  it('parses --mount, durations, detach keys, filters, timestamps and env files', () => {
    expect(parseMount('type=bind,source=/a,target=/b,readonly')).toEqual({ Type: 'bind', Source: '/a', Target: '/b', ReadOnly: true });
    expect(() => parseMount('type=volume')).toThrow(/target is required/);
    expect(parseDuration('1m30s')).toBe(90e9);
    expect(parseDuration('500ms')).toBe(500e6);
    expect(parseDetachKeys('ctrl-p,ctrl-q')).toEqual([16, 17]);
    expect(parseFilters(['label=a=b', 'label=c', 'status=exited'])).toEqual({ label: ['a=b', 'c'], status: ['exited'] });
    expect(() => parseFilters(['oops'])).toThrow(/bad format of filter/);
    expect(parseTimestamp('10m', 1_000_000_000)).toBe(String(Math.floor((1_000_000_000 - 600_000) / 1000)));
    expect(parseTimestamp('2020-01-01T00:00:00Z')).toBe('1577836800');
    expect(parseEnvFile('# c\nA=1\n\nB=two=2\n')).toEqual(['A=1', 'B=two=2']);
  });

  it('builds the create body docker run sends', async () => {
    const body = await buildCreateBody('busybox', ['sh', '-c', 'x'], {
      env: ['A=1'],
      publish: ['8080:80'],
      volume: ['data:/data', '/anon'],
      label: ['k=v'],
      rm: true,
      interactive: true,
      tty: true,
      name: 'web',
      restart: 'on-failure:3',
      memory: '64m',
      network: 'mynet',
      workdir: '/w',
    }, { rows: 40, columns: 120 });
    expect(body).toMatchObject({
      Image: 'busybox',
      Cmd: ['sh', '-c', 'x'],
      Env: ['A=1'],
      Tty: true,
      OpenStdin: true,
      StdinOnce: true,
      AttachStdin: true,
      AttachStdout: true,
      WorkingDir: '/w',
      Labels: { k: 'v' },
      ExposedPorts: { '80/tcp': {} },
      Volumes: { '/anon': {} },
      HostConfig: {
        Binds: ['data:/data'],
        AutoRemove: true,
        NetworkMode: 'mynet',
        PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '8080' }] },
        RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 },
        Memory: 64 * 1024 * 1024,
        ConsoleSize: [40, 120],
      },
      NetworkingConfig: { EndpointsConfig: { mynet: {} } },
    });
    const detached = await buildCreateBody('busybox', [], { detach: true });
    expect(detached).toMatchObject({ AttachStdout: false, AttachStderr: false, HostConfig: { NetworkMode: 'default' } });
  });

  it('formats ports and commands like docker ps, and splits cp arguments', () => {
    expect(formatPorts([{ IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }, { IP: '::', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }, { PrivatePort: 443, Type: 'tcp' }])).toBe(
      '0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 443/tcp',
    );
    expect(ellipsis("sh -c 'echo out; echo err'", 20)).toBe("sh -c 'echo out; ec…");
    expect(splitCpArg('web:/etc/hosts')).toEqual({ container: 'web', path: '/etc/hosts' });
    expect(splitCpArg('./a:b')).toEqual({ path: './a:b' });
    expect(splitCpArg('-')).toEqual({ path: '-' });
  });
});
