import { posix } from 'node:path';
import { DockerfileParseError, ShellLex, parseDockerfile, parseDockerfileAst, type Instruction } from '@berth/image';
import type { ImageConfigChanges } from '@berth/image';
import { InvalidParameterError } from '../errors.js';
import type { ContainerConfig, HealthConfig } from './types.js';

/**
 * Docker's `--change` for `docker commit` and `docker import`: Dockerfile instructions applied to
 * an image config (moby `builder/dockerfile` `BuildFromConfig` and `daemon/commit.go` `merge`).
 * The instructions are parsed by @berth/image's Dockerfile parser, so quoting, JSON forms,
 * escapes and flag errors read exactly as they do in a build.
 */

/** The instructions moby accepts as changes (`validCommitCommands`). */
export const CHANGE_COMMANDS: ReadonlySet<string> = new Set([
  'cmd',
  'entrypoint',
  'env',
  'expose',
  'healthcheck',
  'label',
  'onbuild',
  'stopsignal',
  'user',
  'volume',
  'workdir',
]);

const DEFAULT_SHELL = ['/bin/sh', '-c'];

/** Linux signal names as moby's `signal.SignalMap` knows them (without the SIG prefix). */
const SIGNAL_NAMES = new Set([
  'ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL', 'PROF', 'PWR',
  'QUIT', 'SEGV', 'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'USR1', 'USR2', 'VTALRM', 'WINCH',
  'XCPU', 'XFSZ', 'RTMIN', 'RTMAX', 'UNUSED',
]);

function validSignal(raw: string): boolean {
  if (/^\d+$/.test(raw)) return Number(raw) > 0;
  const name = raw.toUpperCase().replace(/^SIG/, '');
  if (SIGNAL_NAMES.has(name)) return true;
  const rt = /^RTM(IN|AX)([+-])(\d+)$/.exec(name);
  return rt !== null && Number(rt[3]) >= 1 && Number(rt[3]) <= 15;
}

/** `80`, `80/udp`, `8000-8002/tcp`, `127.0.0.1:80:80` → `port/proto` keys (nat.ParsePortSpecs). */
function exposedPorts(raw: string): string[] {
  const m = /^(?:(?:\d{1,3}\.){3}\d{1,3}:)?(?:[^:]*:)?(\d+)(?:-(\d+))?(?:\/(\w+))?$/.exec(raw.trim());
  if (!m) throw new InvalidParameterError(`invalid containerPort: ${raw}`);
  const start = Number(m[1]);
  const end = m[2] !== undefined ? Number(m[2]) : start;
  const proto = (m[3] ?? 'tcp').toLowerCase();
  if (!['tcp', 'udp', 'sctp'].includes(proto)) throw new InvalidParameterError(`invalid proto: ${proto}`);
  if (start < 1 || end > 65535 || end < start) throw new InvalidParameterError(`invalid range specified for container port: ${raw}`);
  const out: string[] = [];
  for (let p = start; p <= end; p++) out.push(`${p}/${proto}`);
  return out;
}

function envLookup(config: ContainerConfig): (name: string) => string | undefined {
  return (name) => {
    for (const entry of [...(config.Env ?? [])].reverse()) {
      const eq = entry.indexOf('=');
      if ((eq < 0 ? entry : entry.slice(0, eq)) === name) return eq < 0 ? '' : entry.slice(eq + 1);
    }
    return undefined;
  };
}

function setEnv(env: string[], key: string, value: string): string[] {
  const out = [...env];
  const entry = `${key}=${value}`;
  const idx = out.findIndex((e) => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e) === key);
  if (idx >= 0) out[idx] = entry;
  else out.push(entry);
  return out;
}

/**
 * Applies `changes` (one instruction each, joined by newlines as moby does) to a copy of
 * `config`. Throws InvalidParameterError (a 400) on a parse error, on an instruction that is not
 * a change command (`copy is not a valid change command`), or on a bad value.
 */
export function applyConfigChanges(config: ContainerConfig, changes: readonly string[]): ContainerConfig {
  const text = changes.join('\n');
  if (text.trim() === '') return { ...config };
  let instructions: Instruction[];
  let escape: string;
  try {
    const ast = parseDockerfileAst(text);
    for (const raw of ast.instructions) {
      if (!CHANGE_COMMANDS.has(raw.command)) throw new InvalidParameterError(`${raw.command} is not a valid change command`);
    }
    escape = ast.directives.escape;
    // The typed parser wants a stage; changes are the body of one.
    instructions = parseDockerfile(`FROM scratch\n${text}`).stages[0]?.instructions ?? [];
  } catch (error) {
    if (error instanceof DockerfileParseError) throw new InvalidParameterError(error.message, { cause: error });
    throw error;
  }
  const lex = new ShellLex({ escapeToken: escape });
  const out: ContainerConfig = { ...config };
  let cmdSet = false;
  for (const ins of instructions) {
    const ex = (word: string): string => lex.processWord(word, envLookup(out));
    const shellForm = (args: string[]): string[] => [...(out.Shell && out.Shell.length > 0 ? out.Shell : DEFAULT_SHELL), args[0] ?? ''];
    switch (ins.kind) {
      case 'env': {
        let env = [...(out.Env ?? [])];
        for (const p of ins.pairs) env = setEnv(env, ex(p.key), ex(p.value));
        out.Env = env;
        break;
      }
      case 'label': {
        const labels = { ...(out.Labels ?? {}) };
        for (const p of ins.pairs) labels[ex(p.key)] = ex(p.value);
        out.Labels = labels;
        break;
      }
      case 'cmd':
        out.Cmd = ins.empty ? [] : ins.command.json ? ins.command.args : shellForm(ins.command.args);
        cmdSet = true;
        break;
      case 'entrypoint':
        out.Entrypoint = ins.empty ? [] : ins.command.json ? ins.command.args : shellForm(ins.command.args);
        // moby: an ENTRYPOINT resets a CMD that these changes did not set themselves.
        if (!cmdSet) out.Cmd = null;
        break;
      case 'expose': {
        const ports = { ...(out.ExposedPorts ?? {}) };
        for (const word of ins.values.flatMap((v) => lex.processWords(v, envLookup(out)))) {
          for (const p of exposedPorts(word)) ports[p] = {};
        }
        out.ExposedPorts = ports;
        break;
      }
      case 'volume': {
        const volumes = { ...(out.Volumes ?? {}) };
        for (const v of ins.values.map(ex)) {
          if (v.trim() === '') throw new InvalidParameterError('VOLUME specified can not be an empty string');
          volumes[v] = {};
        }
        out.Volumes = volumes;
        break;
      }
      case 'user':
        out.User = ex(ins.value);
        break;
      case 'workdir': {
        const dir = ex(ins.value);
        if (dir === '') throw new InvalidParameterError('cannot normalize nothing');
        out.WorkingDir = dir.startsWith('/') ? dir : posix.join('/', out.WorkingDir ?? '', dir);
        break;
      }
      case 'stopsignal': {
        const signal = ex(ins.value);
        if (!validSignal(signal)) throw new InvalidParameterError(`Invalid signal: ${signal}`);
        out.StopSignal = signal;
        break;
      }
      case 'onbuild':
        out.OnBuild = [...(out.OnBuild ?? []), ins.expression.replace(/^\s*(\S+)/, (m) => m.toUpperCase())];
        break;
      case 'healthcheck': {
        const test = ins.none ? ['NONE'] : ins.command?.json ? ['CMD', ...ins.command.args] : ['CMD-SHELL', ins.command?.args[0] ?? ''];
        const health: HealthConfig = { Test: test };
        if (ins.interval !== undefined) health.Interval = ins.interval;
        if (ins.timeout !== undefined) health.Timeout = ins.timeout;
        if (ins.startPeriod !== undefined) health.StartPeriod = ins.startPeriod;
        if (ins.startInterval !== undefined) health.StartInterval = ins.startInterval;
        if (ins.retries !== undefined) health.Retries = ins.retries;
        out.Healthcheck = health;
        break;
      }
      default:
        // Unreachable: the AST check above admits only change commands.
        throw new InvalidParameterError(`${ins.kind} is not a valid change command`);
    }
  }
  return out;
}

/**
 * moby's commit `merge(userConf, imageConf)`: what the commit request (its body and changes) left
 * unset comes from the container's config; env and labels merge key by key, ports and volumes
 * are united.
 */
export function mergeCommitConfig(user: ContainerConfig, container: ContainerConfig): ContainerConfig {
  const out: ContainerConfig = { ...user };
  if (!out.User) out.User = container.User ?? '';
  if (!out.ExposedPorts || Object.keys(out.ExposedPorts).length === 0) out.ExposedPorts = container.ExposedPorts ?? null;
  else out.ExposedPorts = { ...(container.ExposedPorts ?? {}), ...out.ExposedPorts };
  if (!out.Env || out.Env.length === 0) out.Env = container.Env ?? null;
  else {
    const keys = new Set(out.Env.map((e) => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e)));
    out.Env = [...out.Env, ...(container.Env ?? []).filter((e) => !keys.has(e.includes('=') ? e.slice(0, e.indexOf('=')) : e))];
  }
  out.Labels = { ...(container.Labels ?? {}), ...(out.Labels ?? {}) };
  if (!out.Entrypoint || out.Entrypoint.length === 0) {
    if (!out.Cmd || out.Cmd.length === 0) out.Cmd = container.Cmd ?? null;
    if (out.Entrypoint === undefined || out.Entrypoint === null) out.Entrypoint = container.Entrypoint ?? null;
  }
  if (container.Healthcheck) {
    if (!out.Healthcheck) out.Healthcheck = container.Healthcheck;
    else {
      const h: HealthConfig = { ...out.Healthcheck };
      if (!h.Test || h.Test.length === 0) h.Test = container.Healthcheck.Test ?? null;
      if (!h.Interval) h.Interval = container.Healthcheck.Interval ?? 0;
      if (!h.Timeout) h.Timeout = container.Healthcheck.Timeout ?? 0;
      if (!h.StartPeriod) h.StartPeriod = container.Healthcheck.StartPeriod ?? 0;
      if (!h.StartInterval) h.StartInterval = container.Healthcheck.StartInterval ?? 0;
      if (!h.Retries) h.Retries = container.Healthcheck.Retries ?? 0;
      out.Healthcheck = h;
    }
  }
  if (!out.WorkingDir) out.WorkingDir = container.WorkingDir ?? '';
  if (!out.Volumes || Object.keys(out.Volumes).length === 0) out.Volumes = container.Volumes ?? null;
  else out.Volumes = { ...out.Volumes, ...(container.Volumes ?? {}) };
  if (!out.StopSignal && container.StopSignal) out.StopSignal = container.StopSignal;
  return out;
}

/**
 * The image-config fields of a container config, every one present (undefined when unset) so
 * that laid over a base image config they replace it. `OnBuild` and `Healthcheck` ride along:
 * @berth/image's `ImageConfigChanges` does not name them yet, its commit/import spread them in.
 */
export function imageConfigChanges(config: ContainerConfig): ImageConfigChanges {
  const nonEmpty = <T>(v: T[] | null | undefined): T[] | undefined => (v && v.length > 0 ? v : undefined);
  const nonEmptyMap = <T>(v: Record<string, T> | null | undefined): Record<string, T> | undefined =>
    v && Object.keys(v).length > 0 ? v : undefined;
  const changes: ImageConfigChanges & { OnBuild?: string[] | undefined; Healthcheck?: HealthConfig | undefined } = {
    Cmd: nonEmpty(config.Cmd),
    Entrypoint: nonEmpty(config.Entrypoint),
    Env: nonEmpty(config.Env),
    ExposedPorts: nonEmptyMap(config.ExposedPorts) as Record<string, Record<string, never>> | undefined,
    Labels: nonEmptyMap(config.Labels),
    User: config.User || undefined,
    Volumes: nonEmptyMap(config.Volumes) as Record<string, Record<string, never>> | undefined,
    WorkingDir: config.WorkingDir || undefined,
    StopSignal: config.StopSignal || undefined,
    OnBuild: nonEmpty(config.OnBuild),
    Healthcheck: config.Healthcheck ?? undefined,
  };
  return changes;
}
