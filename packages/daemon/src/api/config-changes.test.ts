import { describe, expect, it } from 'vitest';
import { applyConfigChanges, imageConfigChanges, mergeCommitConfig } from './config-changes.js';

describe('applyConfigChanges (docker commit/import --change)', () => {
  it('applies every change command the way a Dockerfile would', () => {
    const config = applyConfigChanges({ Env: ['PATH=/bin'] }, [
      'CMD ["echo", "hi"]',
      'ENV A=1 B="two words"',
      'ENV PATH=$PATH:/opt/bin',
      'EXPOSE 80 53/udp 8000-8001',
      'LABEL org.example.team=berth "quoted key"=v',
      'ONBUILD run echo built',
      'STOPSIGNAL SIGQUIT',
      'USER nobody:nogroup',
      'VOLUME ["/data", "/cache"]',
      'WORKDIR /srv',
      'WORKDIR app',
      'HEALTHCHECK --interval=5s --retries=2 CMD wget -q localhost',
    ]);
    expect(config.Cmd).toEqual(['echo', 'hi']);
    expect(config.Env).toEqual(['PATH=/bin:/opt/bin', 'A=1', 'B=two words']);
    expect(Object.keys(config.ExposedPorts ?? {}).sort()).toEqual(['53/udp', '80/tcp', '8000/tcp', '8001/tcp']);
    expect(config.Labels).toEqual({ 'org.example.team': 'berth', 'quoted key': 'v' });
    expect(config.OnBuild).toEqual(['RUN echo built']);
    expect(config.StopSignal).toBe('SIGQUIT');
    expect(config.User).toBe('nobody:nogroup');
    expect(Object.keys(config.Volumes ?? {})).toEqual(['/data', '/cache']);
    expect(config.WorkingDir).toBe('/srv/app');
    expect(config.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'wget -q localhost'], Interval: 5e9, Retries: 2 });
  });

  it('wraps shell forms in /bin/sh -c and resets CMD on ENTRYPOINT unless CMD came first', () => {
    expect(applyConfigChanges({ Cmd: ['sh'] }, ['ENTRYPOINT top -b'])).toMatchObject({ Entrypoint: ['/bin/sh', '-c', 'top -b'], Cmd: null });
    expect(applyConfigChanges({}, ['CMD ["-b"]', 'ENTRYPOINT ["top"]'])).toMatchObject({ Entrypoint: ['top'], Cmd: ['-b'] });
    expect(applyConfigChanges({}, ['CMD echo $HOME'])).toMatchObject({ Cmd: ['/bin/sh', '-c', 'echo $HOME'] });
  });

  it('refuses what is not a change command, with moby\'s message, and reports parse errors as 400s', () => {
    expect(() => applyConfigChanges({}, ['COPY a b'])).toThrow('copy is not a valid change command');
    expect(() => applyConfigChanges({}, ['ENV A=1', 'RUN true'])).toThrow('run is not a valid change command');
    expect(() => applyConfigChanges({}, ['STOPSIGNAL NOPE'])).toThrow('Invalid signal: NOPE');
    expect(() => applyConfigChanges({}, ['EXPOSE 99999'])).toThrow(/invalid range/);
    expect(() => applyConfigChanges({}, ['ONBUILD FROM busybox'])).toThrow("FROM isn't allowed as an ONBUILD trigger");
    try {
      applyConfigChanges({}, ['ENV']);
      expect.unreachable('ENV without arguments must fail');
    } catch (error) {
      expect(error).toMatchObject({ category: 'invalid' });
    }
  });

  it('returns the config unchanged when there are no changes', () => {
    expect(applyConfigChanges({ Cmd: ['sh'] }, [])).toEqual({ Cmd: ['sh'] });
  });
});

describe('mergeCommitConfig (moby daemon/commit.go merge)', () => {
  const container = {
    Cmd: ['sleep', '10'],
    Entrypoint: null,
    Env: ['PATH=/bin', 'A=container'],
    Labels: { a: 'container', b: 'container' },
    ExposedPorts: { '80/tcp': {} },
    WorkingDir: '/work',
    User: 'root',
  };

  it('fills what the changes left unset from the container and merges env and labels by key', () => {
    const merged = mergeCommitConfig(applyConfigChanges({}, ['ENV A=change', 'LABEL a=change', 'EXPOSE 81']), container);
    expect(merged.Cmd).toEqual(['sleep', '10']);
    expect(merged.Env).toEqual(['A=change', 'PATH=/bin']);
    expect(merged.Labels).toEqual({ a: 'change', b: 'container' });
    expect(Object.keys(merged.ExposedPorts ?? {}).sort()).toEqual(['80/tcp', '81/tcp']);
    expect(merged.WorkingDir).toBe('/work');
    expect(merged.User).toBe('root');
  });

  it('keeps a changed ENTRYPOINT without the container CMD, and an empty ENTRYPOINT clears it', () => {
    expect(mergeCommitConfig(applyConfigChanges({}, ['ENTRYPOINT ["top"]']), container)).toMatchObject({ Entrypoint: ['top'], Cmd: null });
    const cleared = mergeCommitConfig(applyConfigChanges({}, ['ENTRYPOINT []']), { ...container, Entrypoint: ['init'] });
    expect(cleared.Entrypoint).toEqual([]);
    expect(cleared.Cmd).toEqual(['sleep', '10']);
    expect(imageConfigChanges(cleared).Entrypoint).toBeUndefined();
  });
});
