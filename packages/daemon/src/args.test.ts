import { describe, expect, it } from 'vitest';
import { parseDaemonArgs } from './args.js';

const noFile = (): string => {
  throw new Error('ENOENT');
};

describe('parseDaemonArgs', () => {
  it('reads dockerd-style flags, -H repeatable', () => {
    const { options } = parseDaemonArgs(
      ['-H', 'unix:///tmp/a.sock', '--host=tcp://127.0.0.1:0', '--data-root', '/d', '--exec-root=/e', '--pidfile', '/p', '--default-runtime', 'runc', '--live-restore=false', '--log-level', 'debug'],
      noFile,
    );
    expect(options).toMatchObject({
      hosts: ['unix:///tmp/a.sock', 'tcp://127.0.0.1:0'],
      dataRoot: '/d',
      execRoot: '/e',
      pidfile: '/p',
      defaultRuntime: 'runc',
      liveRestore: false,
      logLevel: 'debug',
    });
  });

  it('merges daemon.json, flags winning', () => {
    const file = JSON.stringify({ 'data-root': '/from-file', 'log-level': 'warn', hosts: ['unix:///f.sock'], 'insecure-registries': ['r:5000'] });
    const { options, configFile } = parseDaemonArgs(['--config-file', '/etc/x.json', '--data-root', '/flag'], () => file);
    expect(configFile).toBe('/etc/x.json');
    expect(options).toMatchObject({ dataRoot: '/flag', logLevel: 'warn', hosts: ['unix:///f.sock'], insecureRegistries: ['r:5000'] });
  });

  it('rejects unknown flags, unknown directives and bad values', () => {
    expect(() => parseDaemonArgs(['--bogus'], noFile)).toThrow('unknown flag: --bogus');
    expect(() => parseDaemonArgs(['--config-file', '/x'], () => '{"nope":1}')).toThrow(/don't match any configuration option: nope/);
    expect(() => parseDaemonArgs(['--log-level', 'loud'], noFile)).toThrow(/unable to parse logging level: loud/);
    expect(() => parseDaemonArgs(['--data-root'], noFile)).toThrow(/flag needs an argument/);
    expect(() => parseDaemonArgs(['--config-file', '/missing'], noFile)).toThrow(/unable to read config file/);
  });

  it('requires certificates for TLS', () => {
    expect(() => parseDaemonArgs(['--tlsverify'], noFile)).toThrow(/--tlscert and --tlskey are required/);
    const { options } = parseDaemonArgs(['--tlsverify', '--tlscacert', 'ca', '--tlscert', 'c', '--tlskey', 'k'], noFile);
    expect(options.tls).toEqual({ verify: true, ca: 'ca', cert: 'c', key: 'k' });
  });

  it('derives the default bridge subnet from --bip', () => {
    const { options } = parseDaemonArgs(['--bip', '10.213.7.1/24', '--bridge', 'bt0'], noFile);
    expect(options.network).toEqual({ bridgeName: 'bt0', subnet: '10.213.7.0/24', gateway: '10.213.7.1' });
  });
});
