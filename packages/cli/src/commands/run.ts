import { readFile, writeFile } from 'node:fs/promises';
import type { AttachSession, BerthClient, ContainerCreateBody, HostConfig, MountSpec, PortMap } from '@berth/client';
import { NotFoundError, StartError, splitForPull } from '@berth/client';
import type { Cli, Opts } from '../context.js';
import { ExitError, list } from '../context.js';
import { parseBytes } from '../format/human.js';
import { ProgressRenderer } from '../format/progress.js';
import { parseEnvFile } from './shared.js';

/** Parses a docker duration (`30s`, `1m30s`, `500ms`, `2h`) into nanoseconds. */
export function parseDuration(text: string): number {
  const re = /(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h)/g;
  const unit: Record<string, number> = { ns: 1, us: 1e3, '\u00b5s': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  let matched = '';
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * unit[m[2]!]!;
    matched += m[0];
  }
  if (matched !== text || text === '') throw new ExitError(125, `invalid duration "${text}"`);
  return Math.round(total);
}

/** `-p` forms: `80`, `8080:80`, `127.0.0.1:8080:80`, `127.0.0.1::80`, `[::1]:8080:80/udp`. */
export function parsePublish(specs: string[]): { exposed: Record<string, object>; bindings: PortMap } {
  const exposed: Record<string, object> = {};
  const bindings: PortMap = {};
  for (const spec of specs) {
    let rest = spec;
    let proto = 'tcp';
    const slash = rest.lastIndexOf('/');
    if (slash >= 0) {
      proto = rest.slice(slash + 1);
      rest = rest.slice(0, slash);
    }
    let ip = '';
    const v6 = /^\[([^\]]+)\]:(.*)$/.exec(rest);
    if (v6) {
      ip = v6[1]!;
      rest = v6[2]!;
    }
    const parts = rest.split(':');
    let hostPort = '';
    let containerPort: string;
    if (parts.length === 1) containerPort = parts[0]!;
    else if (parts.length === 2) {
      hostPort = parts[0]!;
      containerPort = parts[1]!;
    } else if (parts.length === 3) {
      ip = parts[0]!;
      hostPort = parts[1]!;
      containerPort = parts[2]!;
    } else throw new ExitError(125, `invalid publish spec "${spec}": expected [ip:][hostPort:]containerPort[/proto]`);
    if (!/^\d+$/.test(containerPort) || (hostPort && !/^\d+$/.test(hostPort))) {
      throw new ExitError(125, `invalid publish spec "${spec}": ports must be numbers`);
    }
    const key = `${containerPort}/${proto}`;
    exposed[key] = {};
    (bindings[key] ??= []).push({ HostIp: ip, HostPort: hostPort });
  }
  return { exposed, bindings };
}

/** `--mount type=bind,source=/a,target=/b,readonly` */
export function parseMount(spec: string): MountSpec {
  const mount: MountSpec = { Type: 'volume', Target: '' };
  for (const field of spec.split(',')) {
    const [rawKey, ...v] = field.split('=');
    const key = rawKey!.trim().toLowerCase();
    const value = v.join('=');
    if (key === 'type') mount.Type = value as MountSpec['Type'];
    else if (key === 'source' || key === 'src') mount.Source = value;
    else if (key === 'target' || key === 'destination' || key === 'dst') mount.Target = value;
    else if (key === 'readonly' || key === 'ro') mount.ReadOnly = value === '' || value === 'true' || value === '1';
    else if (key === 'bind-propagation') mount.BindOptions = { Propagation: value };
    else if (key === 'volume-nocopy') mount.VolumeOptions = { ...mount.VolumeOptions, NoCopy: value === '' || value === 'true' };
    else if (key === 'tmpfs-size') mount.TmpfsOptions = { ...mount.TmpfsOptions, SizeBytes: parseBytes(value) };
    else if (key === 'tmpfs-mode') mount.TmpfsOptions = { ...mount.TmpfsOptions, Mode: parseInt(value, 8) };
    else throw new ExitError(125, `invalid argument "${spec}" for "--mount" flag: unexpected key '${key}'`);
  }
  if (!mount.Target) throw new ExitError(125, `invalid argument "${spec}" for "--mount" flag: target is required`);
  return mount;
}

/** The create body `docker run`/`docker create` would send for these flags. */
export async function buildCreateBody(image: string, command: string[], opts: Opts, tty: { rows?: number; columns?: number } = {}): Promise<ContainerCreateBody> {
  const env: string[] = [];
  for (const file of list(opts.envFile)) env.push(...parseEnvFile(await readFile(file, 'utf8')));
  for (const e of list(opts.env)) env.push(e.includes('=') ? e : process.env[e] !== undefined ? `${e}=${process.env[e]}` : e);
  const { exposed, bindings } = parsePublish(list(opts.publish));
  for (const e of list(opts.expose)) exposed[e.includes('/') ? e : `${e}/tcp`] = {};
  const labels: Record<string, string> = {};
  for (const l of list(opts.label)) {
    const eq = l.indexOf('=');
    labels[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? '' : l.slice(eq + 1);
  }
  const binds: string[] = [];
  const volumes: Record<string, object> = {};
  for (const v of list(opts.volume)) {
    if (v.includes(':')) binds.push(v);
    else volumes[v] = {};
  }
  const attach = list(opts.attach).map((a) => a.toLowerCase());
  const detached = Boolean(opts.detach);
  const interactive = Boolean(opts.interactive);
  const isTty = Boolean(opts.tty);
  const network = (opts.network ?? opts.net) as string | undefined;
  const host: HostConfig = {
    Binds: binds.length ? binds : undefined,
    NetworkMode: network ?? 'default',
    PortBindings: Object.keys(bindings).length ? bindings : undefined,
    PublishAllPorts: Boolean(opts.publishAll) || undefined,
    AutoRemove: Boolean(opts.rm) || undefined,
    Privileged: Boolean(opts.privileged) || undefined,
    ReadonlyRootfs: Boolean(opts.readOnly) || undefined,
    Init: opts.init ? true : undefined,
    CapAdd: list(opts.capAdd).length ? list(opts.capAdd) : undefined,
    CapDrop: list(opts.capDrop).length ? list(opts.capDrop) : undefined,
    Dns: list(opts.dns).length ? list(opts.dns) : undefined,
    ExtraHosts: list(opts.addHost).length ? list(opts.addHost) : undefined,
    GroupAdd: list(opts.groupAdd).length ? list(opts.groupAdd) : undefined,
    SecurityOpt: list(opts.securityOpt).length ? list(opts.securityOpt) : undefined,
    VolumesFrom: list(opts.volumesFrom).length ? list(opts.volumesFrom) : undefined,
    Mounts: list(opts.mount).length ? list(opts.mount).map(parseMount) : undefined,
    Runtime: opts.runtime as string | undefined,
    IpcMode: opts.ipc as string | undefined,
    PidMode: opts.pid as string | undefined,
    UTSMode: opts.uts as string | undefined,
    UsernsMode: opts.userns as string | undefined,
    Memory: opts.memory ? parseBytes(String(opts.memory)) : undefined,
    MemorySwap: opts.memorySwap ? (String(opts.memorySwap) === '-1' ? -1 : parseBytes(String(opts.memorySwap))) : undefined,
    NanoCpus: opts.cpus ? Math.round(Number(opts.cpus) * 1e9) : undefined,
    CpuShares: opts.cpuShares ? Number(opts.cpuShares) : undefined,
    PidsLimit: opts.pidsLimit ? Number(opts.pidsLimit) : undefined,
    ShmSize: opts.shmSize ? parseBytes(String(opts.shmSize)) : undefined,
    LogConfig: opts.logDriver || list(opts.logOpt).length ? { Type: (opts.logDriver as string) ?? '', Config: Object.fromEntries(list(opts.logOpt).map((o) => [o.split('=')[0]!, o.split('=').slice(1).join('=')])) } : undefined,
  };
  if (opts.restart && opts.restart !== 'no') {
    const [name, count] = String(opts.restart).split(':');
    host.RestartPolicy = { Name: name as 'always', MaximumRetryCount: count ? Number(count) : 0 };
  }
  const tmpfs = list(opts.tmpfs);
  if (tmpfs.length) host.Tmpfs = Object.fromEntries(tmpfs.map((t) => [t.split(':')[0]!, t.split(':').slice(1).join(':')]));
  const sysctls = list(opts.sysctl);
  if (sysctls.length) host.Sysctls = Object.fromEntries(sysctls.map((s) => [s.split('=')[0]!, s.split('=').slice(1).join('=')]));
  const ulimits = list(opts.ulimit);
  if (ulimits.length) {
    host.Ulimits = ulimits.map((u) => {
      const [name, limits] = u.split('=');
      const [soft, hard] = (limits ?? '').split(':');
      return { Name: name!, Soft: Number(soft), Hard: Number(hard ?? soft) };
    });
  }
  if (isTty && tty.rows && tty.columns) host.ConsoleSize = [tty.rows, tty.columns];
  for (const key of Object.keys(host) as (keyof HostConfig)[]) if (host[key] === undefined) delete host[key];

  const body: ContainerCreateBody = {
    Image: image,
    Hostname: opts.hostname as string | undefined,
    User: opts.user as string | undefined,
    AttachStdin: !detached && (interactive || attach.includes('stdin')),
    AttachStdout: !detached && (attach.length === 0 || attach.includes('stdout')),
    AttachStderr: !detached && (attach.length === 0 || attach.includes('stderr')),
    Tty: isTty,
    OpenStdin: interactive,
    StdinOnce: interactive && !detached,
    Env: env.length ? env : undefined,
    Cmd: command.length ? command : undefined,
    WorkingDir: opts.workdir as string | undefined,
    Labels: Object.keys(labels).length ? labels : undefined,
    ExposedPorts: Object.keys(exposed).length ? exposed : undefined,
    Volumes: Object.keys(volumes).length ? volumes : undefined,
    StopSignal: opts.stopSignal as string | undefined,
    StopTimeout: opts.stopTimeout !== undefined ? Number(opts.stopTimeout) : undefined,
    HostConfig: host,
    NetworkingConfig: { EndpointsConfig: { [network ?? 'default']: list(opts.networkAlias).length ? { Aliases: list(opts.networkAlias) } : {} } },
  };
  if (opts.entrypoint !== undefined) body.Entrypoint = opts.entrypoint === '' ? [''] : [String(opts.entrypoint)];
  if (opts.healthcheck === false) body.Healthcheck = { Test: ['NONE'] };
  else if (opts.healthCmd) {
    body.Healthcheck = {
      Test: ['CMD-SHELL', String(opts.healthCmd)],
      ...(opts.healthInterval ? { Interval: parseDuration(String(opts.healthInterval)) } : {}),
      ...(opts.healthTimeout ? { Timeout: parseDuration(String(opts.healthTimeout)) } : {}),
      ...(opts.healthStartPeriod ? { StartPeriod: parseDuration(String(opts.healthStartPeriod)) } : {}),
      ...(opts.healthRetries ? { Retries: Number(opts.healthRetries) } : {}),
    };
  }
  for (const key of Object.keys(body) as (keyof ContainerCreateBody)[]) if (body[key] === undefined) delete body[key];
  return body;
}

async function pullWithProgress(cli: Cli, client: BerthClient, image: string, platform: string | undefined, quiet: boolean): Promise<void> {
  const renderer = new ProgressRenderer(cli.stderr, Boolean(cli.stderr.isTTY), cli.stderr.columns ?? 80);
  for await (const message of await client.images.pull(image, { platform })) {
    if (!quiet) renderer.write(message);
  }
}

/** create with docker's pull policy; errors are reported the docker way with exit 125. */
async function createContainer(cli: Cli, client: BerthClient, body: ContainerCreateBody, opts: Opts): Promise<string> {
  const name = opts.name as string | undefined;
  const platform = opts.platform as string | undefined;
  const pullPolicy = (opts.pull as string | undefined) ?? 'missing';
  const image = body.Image;
  const ref = splitForPull(image);
  const familiar = `${image}${/[:@][^/]*$/.test(image) ? '' : ':latest'}`;
  const pull = async (): Promise<void> => {
    try {
      await pullWithProgress(cli, client, image, platform, Boolean(opts.quiet));
    } catch (error) {
      throw new ExitError(
        125,
        `berth: image ${familiar} is not in the image store of the daemon at ${client.host}, and pulling ${ref.fromImage}:${ref.tag} failed: ${(error as Error).message}\n` +
          `See 'berth run --help'.`,
      );
    }
  };
  try {
    if (pullPolicy === 'always') await pull();
    const created = await client.containers.create(body, { name, platform });
    for (const w of created.Warnings ?? []) cli.err(`WARNING: ${w}\n`);
    return created.Id;
  } catch (error) {
    if (error instanceof ExitError) throw error;
    if (error instanceof NotFoundError && /no such image/i.test(error.message) && pullPolicy !== 'never' && pullPolicy !== 'always') {
      cli.err(`Unable to find image '${familiar}' locally\n`);
      await pull();
      try {
        const created = await client.containers.create(body, { name, platform });
        return created.Id;
      } catch (retryError) {
        throw new ExitError(125, `berth: Error response from daemon: ${(retryError as Error).message}\nSee 'berth run --help'.`);
      }
    }
    if (error instanceof NotFoundError && /no such image/i.test(error.message)) {
      throw new ExitError(125, `berth: Error response from daemon: ${error.message} (looked in the image store of the daemon at ${client.host}; --pull=never forbids pulling)\nSee 'berth run --help'.`);
    }
    const { describeError } = await import('../errors.js');
    throw new ExitError(125, `berth: ${describeError(error, cli.host).message.replace(/^berth: /, '')}\nSee 'berth run --help'.`);
  }
}

export async function create(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const body = await buildCreateBody(args[0]!, args.slice(1), { ...opts, detach: true }, { rows: cli.stdout.rows, columns: cli.stdout.columns });
  const id = await createContainer(cli, client, body, opts);
  if (opts.cidfile) await writeFile(String(opts.cidfile), id, { flag: 'wx' });
  cli.out(`${id}\n`);
  return 0;
}

/** Parses `ctrl-p,ctrl-q` into the byte sequence that detaches. */
export function parseDetachKeys(spec: string): number[] {
  return spec.split(',').map((k) => {
    const key = k.trim().toLowerCase();
    const ctrl = /^ctrl-(.)$/.exec(key);
    if (ctrl) {
      const c = ctrl[1]!;
      if (c >= 'a' && c <= 'z') return c.charCodeAt(0) - 96;
      const special: Record<string, number> = { '@': 0, '[': 27, '\\': 28, ']': 29, '^': 30, _: 31 };
      if (special[c] !== undefined) return special[c];
    }
    if (key.length === 1) return key.charCodeAt(0);
    throw new ExitError(125, `invalid detach keys "${spec}": use ctrl-<letter> or single characters separated by commas`);
  });
}

/**
 * Streams a session to the terminal: output to stdout/stderr, stdin (raw mode for TTY) to the
 * session with detach keys, terminal resizes to the daemon, and SIGINT/SIGTERM forwarded when
 * `proxySignals`. Resolves 'detached' when the user typed the detach keys, 'ended' when the output ended.
 */
async function streamSession(
  cli: Cli,
  session: AttachSession,
  o: { tty: boolean; stdin: boolean; detachKeys: number[]; onResize?: (h: number, w: number) => Promise<void>; onSignal?: (signal: NodeJS.Signals) => Promise<void> },
): Promise<'detached' | 'ended'> {
  const cleanups: (() => void)[] = [];
  let detachResolve: (() => void) | undefined;
  const detached = new Promise<'detached'>((resolve) => {
    detachResolve = () => resolve('detached');
  });
  if (o.stdin) {
    const input = cli.stdin;
    const raw = o.tty && input.isTTY;
    if (raw) {
      input.setRawMode(true);
      cleanups.push(() => input.setRawMode(false));
    }
    let matched = 0;
    const onData = (chunk: Buffer): void => {
      if (o.tty && o.detachKeys.length) {
        for (const byte of chunk) {
          matched = byte === o.detachKeys[matched] ? matched + 1 : byte === o.detachKeys[0] ? 1 : 0;
          if (matched === o.detachKeys.length) {
            detachResolve?.();
            return;
          }
        }
      }
      // A container that reads its stdin slowly holds the input here, not in memory.
      if (!session.stdin.write(chunk)) {
        input.pause();
        session.stdin.once('drain', () => input.resume());
      }
    };
    const onEnd = (): void => {
      session.stdin.end();
    };
    input.on('data', onData);
    input.once('end', onEnd);
    input.resume();
    cleanups.push(() => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.pause();
    });
  }
  if (o.tty && o.onResize && cli.stdout.isTTY) {
    const resize = (): void => {
      void o.onResize?.(cli.stdout.rows, cli.stdout.columns).catch(() => undefined);
    };
    resize();
    process.on('SIGWINCH', resize);
    cleanups.push(() => process.off('SIGWINCH', resize));
  }
  if (o.onSignal) {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as NodeJS.Signals[]) {
      const handler = (): void => {
        void o.onSignal?.(signal).catch(() => undefined);
      };
      process.on(signal, handler);
      cleanups.push(() => process.off(signal, handler));
    }
  }
  const pump = (async (): Promise<'ended'> => {
    for await (const frame of session.output) {
      const target = frame.stream === 'stderr' ? cli.stderr : cli.stdout;
      if (!target.write(frame.data)) await new Promise((r) => target.once('drain', r));
    }
    return 'ended';
  })();
  try {
    return await Promise.race([pump, detached]);
  } finally {
    for (const c of cleanups.reverse()) c();
  }
}

export async function run(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const tty = Boolean(opts.tty);
  if (tty && opts.interactive && !cli.stdin.isTTY) throw new ExitError(1, 'berth: the input device is not a TTY (drop -t, or run from a terminal)');
  const body = await buildCreateBody(args[0]!, args.slice(1), opts, { rows: cli.stdout.rows, columns: cli.stdout.columns });
  const id = await createContainer(cli, client, body, opts);
  if (opts.cidfile) await writeFile(String(opts.cidfile), id, { flag: 'wx' });
  if (opts.detach) {
    try {
      await client.containers.start(id);
    } catch (error) {
      throw new ExitError(new StartError(id, (error as Error).message).exitCode, `berth: Error response from daemon: ${(error as Error).message}`);
    }
    cli.out(`${id}\n`);
    return 0;
  }
  const interactive = Boolean(opts.interactive);
  const session = await client.containers.attach(id, { stdin: interactive, stdout: body.AttachStdout, stderr: body.AttachStderr, tty });
  const wait = client.containers.waitFor(id, { condition: opts.rm ? 'removed' : 'next-exit' });
  await wait.waiting;
  try {
    await client.containers.start(id);
  } catch (error) {
    session.close();
    const message = (error as Error).message;
    throw new ExitError(new StartError(id, message).exitCode, `berth: Error response from daemon: ${message}`);
  }
  const proxy = opts.sigProxy !== false && !tty;
  const outcome = await streamSession(cli, session, {
    tty,
    stdin: interactive,
    detachKeys: parseDetachKeys(String(opts.detachKeys ?? 'ctrl-p,ctrl-q')),
    onResize: (h, w) => client.containers.resize(id, { h, w }),
    onSignal: proxy ? (signal) => client.containers.kill(id, { signal_: signal }) : undefined,
  });
  if (outcome === 'detached') {
    session.close();
    cli.err('\r\nread escape sequence\r\n');
    return 0;
  }
  const result = await wait.result;
  session.close();
  if (result.Error?.Message) cli.err(`berth: ${result.Error.Message}\n`);
  return result.StatusCode;
}

export async function start(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  if (!opts.attach && !opts.interactive) {
    const { forEachArg } = await import('./shared.js');
    return forEachArg(cli, args, async (name) => {
      await client.containers.start(name);
    });
  }
  if (args.length > 1) throw new ExitError(1, 'berth: you cannot start and attach multiple containers at once');
  const info = await client.containers.inspect(args[0]!);
  const tty = info.Config.Tty ?? false;
  const session = await client.containers.attach(info.Id, { stdin: Boolean(opts.interactive), tty });
  const wait = client.containers.waitFor(info.Id, { condition: info.HostConfig.AutoRemove ? 'removed' : 'next-exit' });
  await wait.waiting;
  try {
    await client.containers.start(info.Id);
  } catch (error) {
    session.close();
    throw new ExitError(new StartError(info.Id, (error as Error).message).exitCode, `Error response from daemon: ${(error as Error).message}`);
  }
  const outcome = await streamSession(cli, session, {
    tty,
    stdin: Boolean(opts.interactive),
    detachKeys: parseDetachKeys(String(opts.detachKeys ?? 'ctrl-p,ctrl-q')),
    onResize: (h, w) => client.containers.resize(info.Id, { h, w }),
    onSignal: tty ? undefined : (signal) => client.containers.kill(info.Id, { signal_: signal }),
  });
  session.close();
  if (outcome === 'detached') return 0;
  return (await wait.result).StatusCode;
}

export async function attach(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const info = await client.containers.inspect(args[0]!);
  if (!info.State.Running) throw new ExitError(1, 'You cannot attach to a stopped container, start it first');
  const tty = info.Config.Tty ?? false;
  const withStdin = opts.stdin !== false && (info.Config.OpenStdin ?? false);
  const session = await client.containers.attach(info.Id, { stdin: withStdin, tty });
  const wait = client.containers.waitFor(info.Id, { condition: 'not-running' });
  const outcome = await streamSession(cli, session, {
    tty,
    stdin: withStdin,
    detachKeys: parseDetachKeys(String(opts.detachKeys ?? 'ctrl-p,ctrl-q')),
    onResize: (h, w) => client.containers.resize(info.Id, { h, w }),
    onSignal: opts.sigProxy !== false && !tty ? (signal) => client.containers.kill(info.Id, { signal_: signal }) : undefined,
  });
  session.close();
  if (outcome === 'detached') return 0;
  return (await wait.result).StatusCode;
}

export async function exec(cli: Cli, args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const tty = Boolean(opts.tty);
  const interactive = Boolean(opts.interactive);
  if (tty && interactive && !cli.stdin.isTTY) throw new ExitError(1, 'berth: the input device is not a TTY (drop -t, or run from a terminal)');
  const info = await client.containers.inspect(args[0]!);
  const env: string[] = [];
  for (const file of list(opts.envFile)) env.push(...parseEnvFile(await readFile(file, 'utf8')));
  env.push(...list(opts.env));
  const consoleSize: [number, number] | undefined = tty && cli.stdout.isTTY ? [cli.stdout.rows, cli.stdout.columns] : undefined;
  const created = await client.exec.create(info.Id, {
    Cmd: args.slice(1),
    Tty: tty,
    AttachStdin: interactive && !opts.detach,
    AttachStdout: !opts.detach,
    AttachStderr: !opts.detach,
    Env: env.length ? env : undefined,
    User: opts.user as string | undefined,
    WorkingDir: opts.workdir as string | undefined,
    Privileged: Boolean(opts.privileged),
    DetachKeys: opts.detachKeys as string | undefined,
    ...(consoleSize ? { ConsoleSize: consoleSize } : {}),
  });
  if (opts.detach) {
    await client.exec.startDetached(created.Id, { tty });
    return 0;
  }
  const session = await client.exec.start(created.Id, { tty, consoleSize });
  const outcome = await streamSession(cli, session, {
    tty,
    stdin: interactive,
    detachKeys: parseDetachKeys(String(opts.detachKeys ?? 'ctrl-p,ctrl-q')),
    onResize: (h, w) => client.exec.resize(created.Id, { h, w }),
  });
  session.close();
  if (outcome === 'detached') return 0;
  const result = await client.exec.inspect(created.Id);
  return result.ExitCode ?? 0;
}
