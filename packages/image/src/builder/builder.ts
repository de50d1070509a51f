import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, chown, lstat, mkdir, open, readFile, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import { digestOf, formatPlatform, hostPlatform, MediaType, NotImplementedError, parsePlatform } from '@berth/oci-spec';
import type { Descriptor, History, ImageConfig, ImageManifest, Platform } from '@berth/oci-spec';
import { decompressStream } from '../layer/decompress.js';
import type { Mount } from '../snapshot/types.js';
import { BuildStore } from './cache/build-store.js';
import type { LayerMeta, LayerRef } from './cache/build-store.js';
import { BuildContext, hashContextPath, resolveSourcePaths } from './context/build-context.js';
import { IgnoreMatcher } from './context/dockerignore.js';
import { BuildError, DockerfileParseError, InvalidBuildError, RunStepFailedError, ShellLexError } from './errors.js';
import type { BuildExecutor, BuildNetworkMode } from './executor.js';
import { UpperWriter, directorySourceTree, layeredSourceTree, parseChmod } from './fs/copy.js';
import type { SourceTree } from './fs/copy.js';
import { LayeredFs } from './fs/layered-fs.js';
import { resolveScoped, splitPath } from './fs/scoped-path.js';
import { resolveChown, resolveUser } from './fs/users.js';
import type { BuildImageSource, SourceImage, SourceLayer } from './image-source.js';
import type { BuildImageStore, BuildOutput, BuiltImage } from './output.js';
import { writeDockerArchive, writeOciLayout } from './output.js';
import { chompHeredocContent, parseDockerfileAst } from './parser/ast.js';
import type { Heredoc } from './parser/ast.js';
import { parseDockerfile, toInstruction } from './parser/instructions.js';
import type { CommandLine, CopyInstruction, Dockerfile, Instruction, RunInstruction, Stage } from './parser/instructions.js';
import { ShellLex } from './parser/shell-lex.js';
import { parseRunMount } from './run-mount.js';
import type { RunMount } from './run-mount.js';

/** Progress of a build, in order per step. `step` numbers are 1-based over the steps that run. */
export type BuildEvent =
  | { type: 'step-started'; step: number; total: number; stage: string; instruction: string }
  | { type: 'step-cached'; step: number }
  | { type: 'step-output'; step: number; stream: 'stdout' | 'stderr'; line: string }
  | { type: 'step-finished'; step: number; cached: boolean; durationMs: number }
  | { type: 'step-failed'; step: number; error: string; durationMs: number }
  | { type: 'warning'; message: string }
  | { type: 'image'; id: string; manifestDigest: string; tags: string[] };

export interface BuilderOptions {
  /** The builder's state directory (cache, unpacked layers, cache mounts). */
  root: string;
  executor: BuildExecutor;
  /** Where FROM / COPY --from / --cache-from images come from. */
  images: BuildImageSource;
  /** Default output when a build gives none: the engine's image store. */
  store?: BuildImageStore;
  /** Hard limit for the build cache (layers, their blobs, cache mounts). Default 10 GiB. */
  cacheMaxBytes?: number;
  /** Used by `ADD <url>`; default the global fetch. */
  fetch?: typeof fetch;
}

export interface BuildOptions {
  /** A BuildContext, or a directory path. */
  context: BuildContext | string;
  /** Path of the Dockerfile inside the context (default `Dockerfile`). */
  dockerfile?: string;
  /** The Dockerfile text itself (then `dockerfile` is not read). */
  dockerfileText?: string;
  buildArgs?: Record<string, string>;
  /** Stage to build (name or index); default the last. */
  target?: string;
  tags?: string[];
  /** Labels added to the final image. */
  labels?: Record<string, string>;
  noCache?: boolean;
  /** Images whose history carries cache keys of earlier berth builds. */
  cacheFrom?: string[];
  /** `os/arch[/variant]`; default the host's. */
  platform?: string;
  /** Default network for RUN steps (`RUN --network` overrides). Default 'default'. */
  network?: BuildNetworkMode;
  /** Secrets for `RUN --mount=type=secret`, by id. Never written to a layer, the history or the cache key. */
  secrets?: Record<string, Uint8Array | string>;
  /** Allow `RUN --security=insecure`. */
  allowInsecure?: boolean;
  /** Default: `{ type: 'store' }` with the builder's store, else 'none'. */
  output?: BuildOutput;
  onEvent?: (event: BuildEvent) => void;
  /**
   * A promise while the consumer of `onEvent` is behind (e.g. a slow client of a daemon): RUN
   * steps stop reading their output until it settles (see `BuildRunRequest.outputReady`).
   */
  outputReady?: () => Promise<void> | undefined;
  signal?: AbortSignal;
}

export interface BuildResult {
  /** Image ID (config digest). */
  id: string;
  manifestDigest: string;
  config: ImageConfig;
  manifest: ImageManifest;
  tags: string[];
  steps: { total: number; cached: number; executed: number };
  warnings: string[];
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const DEFAULT_SHELL = ['/bin/sh', '-c'];
const PROXY_ARGS = [
  'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy',
];
const EPOCH = '1970-01-01T00:00:00Z';
const HISTORY_COMMENT = 'buildkit.dockerfile.v0';
const CACHE_COMMENT_PREFIX = 'berth.cache-key=';
const SIGNALS = new Set([
  'SIGABRT', 'SIGALRM', 'SIGBUS', 'SIGCHLD', 'SIGCONT', 'SIGFPE', 'SIGHUP', 'SIGILL', 'SIGINT', 'SIGIO', 'SIGKILL', 'SIGPIPE', 'SIGPROF',
  'SIGPWR', 'SIGQUIT', 'SIGSEGV', 'SIGSTKFLT', 'SIGSTOP', 'SIGSYS', 'SIGTERM', 'SIGTRAP', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGURG',
  'SIGUSR1', 'SIGUSR2', 'SIGVTALRM', 'SIGWINCH', 'SIGXCPU', 'SIGXFSZ',
]);

function sha(parts: unknown): string {
  return `sha256:${createHash('sha256').update(JSON.stringify(parts)).digest('hex')}`;
}

/** The state of a stage between two instructions. */
interface StageState {
  /** Cache identity of everything so far (base image ID, every instruction, copied content). */
  key: string;
  layers: LayerMeta[];
  config: ImageConfig;
  /** `created` of the newest layer (or of the base image): what config-only steps inherit. */
  created: string;
  /** ARGs declared in this stage, with their values (undefined: declared without a value). */
  args: Map<string, string | undefined>;
  shell: string[];
  /** Whether CMD was set in this stage (ENTRYPOINT resets an inherited CMD only). */
  cmdSet: boolean;
  platform: Platform;
}

interface StepInfo {
  step: number;
  total: number;
  label: string;
}

/** A step that failed for a reason other than a BuildError (an I/O error, say). */
class StepFailure extends BuildError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BUILD_STEP_FAILED', 'internal', message, options);
  }
}

/** A build in progress: one Dockerfile, one context, shared by its stages. */
class BuildRun {
  readonly warnings: string[] = [];
  private readonly stages = new Map<number, Promise<StageState>>();
  private readonly lex: ShellLex;
  private readonly heredocLex: ShellLex;
  private readonly platform: Platform;
  private readonly globalArgs = new Map<string, string | undefined>();
  private readonly usedBuildArgs = new Set<string>();
  private readonly steps = new Map<Instruction, StepInfo>();
  private readonly importedCache = new Map<string, { layer?: SourceLayer; created: string }>();
  private readonly releases: (() => void)[] = [];
  private readonly emptyLayerDir: string;
  /** Aborted by the caller's signal or by the first failing stage (stops the others' steps). */
  private readonly abort = new AbortController();
  /** The failure that stopped the build (what the caller sees, not a sibling's abort). */
  firstError: unknown;
  cached = 0;
  executed = 0;
  total = 0;

  constructor(
    private readonly builder: Builder,
    private readonly store: BuildStore,
    private readonly dockerfile: Dockerfile,
    private readonly context: BuildContext,
    private readonly options: BuildOptions,
    emptyLayerDir: string,
  ) {
    this.emptyLayerDir = emptyLayerDir;
    const outer = options.signal;
    if (outer) {
      if (outer.aborted) this.abort.abort(outer.reason);
      else outer.addEventListener('abort', () => this.abort.abort(outer.reason), { once: true });
    }
    this.lex = new ShellLex({ escapeToken: dockerfile.directives.escape });
    this.heredocLex = new ShellLex({ escapeToken: dockerfile.directives.escape, rawQuotes: true, rawEscapes: true });
    this.platform = options.platform ? parsePlatform(options.platform) : hostPlatform();
    const build = hostPlatform();
    const platformArgs: Record<string, string> = {
      BUILDPLATFORM: formatPlatform(build),
      BUILDOS: build.os,
      BUILDARCH: build.architecture,
      BUILDVARIANT: build.variant ?? '',
      TARGETPLATFORM: formatPlatform(this.platform),
      TARGETOS: this.platform.os,
      TARGETARCH: this.platform.architecture,
      TARGETVARIANT: this.platform.variant ?? '',
    };
    for (const [k, v] of Object.entries(platformArgs)) this.globalArgs.set(k, v);
    for (const arg of dockerfile.metaArgs) {
      for (const def of arg.args) {
        const provided = options.buildArgs?.[def.name];
        if (provided !== undefined) this.usedBuildArgs.add(def.name);
        const value =
          provided ??
          (def.defaultValue !== undefined ? this.expand(def.defaultValue, (n) => this.globalArgs.get(n), arg.loc.startLine) : undefined);
        this.globalArgs.set(def.name, value);
      }
    }
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  private emit(event: BuildEvent): void {
    this.options.onEvent?.(event);
  }

  private expand(word: string, lookup: (name: string) => string | undefined, line: number): string {
    try {
      return this.lex.processWord(word, lookup);
    } catch (error) {
      if (error instanceof ShellLexError) throw new DockerfileParseError(error.message, line, 1, line, { cause: error });
      throw error;
    }
  }

  private platformArgDefault(name: string): string | undefined {
    return name.startsWith('TARGET') || name.startsWith('BUILD') ? this.globalArgs.get(name) : undefined;
  }

  /** Lookup for expansion inside a stage: ENV first, then ARGs in scope, then proxy args. */
  private lookup(state: StageState): (name: string) => string | undefined {
    const env = new Map<string, string>();
    for (const e of state.config.config?.Env ?? []) {
      const eq = e.indexOf('=');
      env.set(eq < 0 ? e : e.slice(0, eq), eq < 0 ? '' : e.slice(eq + 1));
    }
    return (name) => {
      const fromEnv = env.get(name);
      if (fromEnv !== undefined) return fromEnv;
      if (state.args.has(name)) return state.args.get(name);
      if (PROXY_ARGS.includes(name)) return this.options.buildArgs?.[name];
      return undefined;
    };
  }

  private stageByName(name: string, before: number): Stage | undefined {
    const lower = name.toLowerCase();
    const byName = this.dockerfile.stages.find((s) => s.name === lower && s.index < before);
    if (byName) return byName;
    if (/^\d+$/.test(name)) {
      const idx = Number(name);
      if (idx < before) return this.dockerfile.stages[idx];
    }
    return undefined;
  }

  private globalLookup = (name: string): string | undefined => this.globalArgs.get(name);

  /** Stages the target needs (FROM and --from references), in Dockerfile order. */
  neededStages(target: Stage): Stage[] {
    const needed = new Set<number>();
    const visit = (stage: Stage): void => {
      if (needed.has(stage.index)) return;
      needed.add(stage.index);
      const refs: string[] = [this.safeExpand(stage.from.image)];
      for (const ins of stage.instructions) {
        if ((ins.kind === 'copy' || ins.kind === 'add') && ins.from !== undefined) refs.push(this.safeExpand(ins.from));
        if (ins.kind === 'run') {
          for (const m of ins.mounts) {
            const from = /(?:^|,)from=([^,]+)/.exec(m)?.[1];
            if (from) refs.push(this.safeExpand(from));
          }
        }
      }
      for (const ref of refs) {
        const dep = this.stageByName(ref, stage.index);
        if (dep) visit(dep);
      }
    };
    visit(target);
    return this.dockerfile.stages.filter((s) => needed.has(s.index));
  }

  private safeExpand(word: string): string {
    try {
      return this.lex.processWord(word, this.globalLookup);
    } catch {
      return word;
    }
  }

  numberSteps(stages: Stage[]): void {
    let n = 0;
    const total = stages.reduce((sum, s) => sum + 1 + s.instructions.length, 0);
    this.total = total;
    for (const stage of stages) {
      const count = stage.instructions.length + 1;
      const label = (i: number) => `${stage.name ?? `stage-${stage.index}`} ${i}/${count}`;
      this.steps.set(stage.from, { step: ++n, total, label: label(1) });
      stage.instructions.forEach((ins, i) => this.steps.set(ins, { step: ++n, total, label: label(i + 2) }));
    }
  }

  async importCacheFrom(refs: string[]): Promise<void> {
    for (const ref of refs) {
      let image: SourceImage;
      try {
        image = await this.builder.images.resolveImage(ref, { platform: this.platform, signal: this.signal });
      } catch (error) {
        this.warn(`--cache-from ${ref}: ${error instanceof Error ? error.message : String(error)}`);
        continue;
      }
      let layerIndex = 0;
      for (const h of image.config.history ?? []) {
        const layer = h.empty_layer ? undefined : image.layers[layerIndex++];
        const key = h.comment?.startsWith(CACHE_COMMENT_PREFIX) ? h.comment.slice(CACHE_COMMENT_PREFIX.length) : undefined;
        if (key === undefined) continue;
        this.importedCache.set(key, { layer, created: h.created ?? EPOCH });
      }
    }
  }

  warn(message: string): void {
    this.warnings.push(message);
    this.emit({ type: 'warning', message });
  }

  unusedBuildArgs(stages: Stage[]): string[] {
    const declared = new Set<string>();
    for (const a of this.dockerfile.metaArgs) for (const d of a.args) declared.add(d.name);
    for (const s of stages) for (const ins of s.instructions) if (ins.kind === 'arg') for (const d of ins.args) declared.add(d.name);
    return Object.keys(this.options.buildArgs ?? {}).filter((k) => !declared.has(k) && !PROXY_ARGS.includes(k));
  }

  getStage(stage: Stage): Promise<StageState> {
    let p = this.stages.get(stage.index);
    if (!p) {
      p = this.buildStage(stage);
      // A failing stage stops the stages running beside it; nobody awaiting it yet must not
      // turn it into an unhandled rejection.
      p.catch((error: unknown) => {
        if (this.firstError === undefined) this.firstError = error;
        if (!this.abort.signal.aborted) this.abort.abort(error);
      });
      this.stages.set(stage.index, p);
    }
    return p;
  }

  private async buildStage(stage: Stage): Promise<StageState> {
    let state = await this.step(stage.from, () => this.from(stage));
    for (const ins of stage.instructions) {
      this.signal.throwIfAborted();
      const current = state;
      state = await this.step(ins, () => this.dispatch(current, ins, stage));
    }
    return state;
  }

  /** Runs one instruction with its events; errors name the Dockerfile line. */
  private async step(ins: Instruction, run: () => Promise<StageState>): Promise<StageState> {
    const info = this.steps.get(ins) ?? { step: 0, total: this.total, label: '' };
    const started = performance.now();
    this.emit({ type: 'step-started', step: info.step, total: info.total, stage: info.label, instruction: ins.original });
    const before = this.cached;
    try {
      const state = await run();
      const cached = this.cached > before;
      this.emit({ type: 'step-finished', step: info.step, cached, durationMs: performance.now() - started });
      return state;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.emit({ type: 'step-failed', step: info.step, error: message, durationMs: performance.now() - started });
      if (error instanceof DockerfileParseError || (error instanceof BuildError && error.message.startsWith('Dockerfile:'))) throw error;
      if (error instanceof BuildError) {
        // Same class and code for callers; the message gains the Dockerfile line and instruction.
        error.message = `Dockerfile:${ins.loc.startLine}: ${ins.original}: ${message}`;
        throw error;
      }
      if (error instanceof Error && error.name === 'AbortError') throw error;
      throw new StepFailure(`Dockerfile:${ins.loc.startLine}: ${ins.original}: ${message}`, { cause: error });
    }
  }

  private stepOf(ins: Instruction): number {
    return this.steps.get(ins)?.step ?? 0;
  }

  // ---------------------------------------------------------------- FROM

  private async from(stage: Stage): Promise<StageState> {
    const from = stage.from;
    const name = this.expand(from.image, this.globalLookup, from.loc.startLine);
    if (name === '') throw new InvalidBuildError(`base name (${from.image}) should not be blank`);
    const platform = from.platform
      ? parsePlatform(this.expand(from.platform, this.globalLookup, from.loc.startLine))
      : this.platform;
    const args = new Map<string, string | undefined>();
    const parentStage = this.stageByName(name, stage.index);
    if (parentStage) {
      const parent = await this.getStage(parentStage);
      this.cached++;
      return { ...parent, args, cmdSet: false, config: structuredClone(parent.config) };
    }
    if (name === 'scratch') {
      this.cached++;
      const config: ImageConfig = {
        architecture: platform.architecture,
        os: platform.os,
        ...(platform.variant ? { variant: platform.variant } : {}),
        config: { Env: [`PATH=${DEFAULT_PATH}`] },
        rootfs: { type: 'layers', diff_ids: [] },
        history: [],
      };
      return { key: sha(['scratch', formatPlatform(platform)]), layers: [], config, created: EPOCH, args, shell: DEFAULT_SHELL, cmdSet: false, platform };
    }
    const image = await this.builder.images.resolveImage(name, { platform, signal: this.signal });
    const layers = await Promise.all(image.layers.map((l) => this.store.ensureLayer(l)));
    this.releases.push(this.store.hold(layers.map((l) => l.diffId)));
    const config = structuredClone(image.config);
    config.config ??= {};
    if (!(config.config.Env ?? []).some((e) => e.startsWith('PATH='))) config.config.Env = [`PATH=${DEFAULT_PATH}`, ...(config.config.Env ?? [])];
    config.history ??= [];
    const state: StageState = {
      key: sha(['from', image.id]),
      layers,
      config,
      created: image.config.created ?? EPOCH,
      args,
      shell: config.config.Shell && config.config.Shell.length > 0 ? config.config.Shell : DEFAULT_SHELL,
      cmdSet: false,
      platform,
    };
    this.cached++;
    // ONBUILD triggers of the base image run right after FROM, then are cleared.
    const triggers = config.config.OnBuild ?? [];
    config.config.OnBuild = null;
    let current = state;
    for (const trigger of triggers) {
      const ast = parseDockerfileAst(trigger);
      for (const raw of ast.instructions) {
        const ins = toInstruction({ ...raw, startLine: from.loc.startLine, endLine: from.loc.endLine }, this.dockerfile.directives.escape);
        if (ins.kind === 'from' || ins.kind === 'onbuild') throw new InvalidBuildError(`${ins.kind.toUpperCase()} isn't allowed as an ONBUILD trigger`);
        current = await this.dispatch(current, ins, stage);
      }
    }
    return current;
  }

  // ---------------------------------------------------------------- dispatch

  private history(state: StageState, createdBy: string, emptyLayer: boolean, created: string, key?: string): History {
    const h: History = { created, created_by: createdBy, comment: key ? `${CACHE_COMMENT_PREFIX}${key}` : HISTORY_COMMENT };
    if (emptyLayer) h.empty_layer = true;
    state.config.history = [...(state.config.history ?? []), h];
    return h;
  }

  /**
   * A config-only step: new key, history entry without a layer. Nothing runs either way; it
   * counts as cached when the same key was seen before (so a changed parent shows up as the
   * steps after it not being cached, as in Docker's output).
   */
  private async configStep(
    state: StageState,
    payload: unknown[],
    createdBy: string,
    mutate: (c: NonNullable<ImageConfig['config']>) => void,
  ): Promise<StageState> {
    const config = structuredClone(state.config);
    config.config ??= {};
    mutate(config.config);
    const key = sha([state.key, ...payload]);
    const next: StageState = { ...state, config, key };
    this.history(next, createdBy, true, state.created);
    if (!this.options.noCache && (await this.store.lookup(key))) this.cached++;
    else {
      await this.store.record(key, undefined, state.created);
      this.executed++;
    }
    return next;
  }

  private async dispatch(state: StageState, ins: Instruction, stage: Stage): Promise<StageState> {
    const line = ins.loc.startLine;
    const lookup = this.lookup(state);
    const ex = (w: string) => this.expand(w, lookup, line);
    switch (ins.kind) {
      case 'from':
        throw new InvalidBuildError('FROM inside a stage');
      case 'env': {
        const pairs = ins.pairs.map((p) => ({ key: ex(p.key), value: ex(p.value) }));
        return this.configStep(state, ['env', pairs], `ENV ${pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`, (c) => {
          const env = [...(c.Env ?? [])];
          for (const p of pairs) {
            const idx = env.findIndex((e) => e.split('=')[0] === p.key);
            const entry = `${p.key}=${p.value}`;
            if (idx >= 0) env[idx] = entry;
            else env.push(entry);
          }
          c.Env = env;
        });
      }
      case 'label': {
        const pairs = ins.pairs.map((p) => ({ key: ex(p.key), value: ex(p.value) }));
        return this.configStep(state, ['label', pairs], `LABEL ${pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`, (c) => {
          c.Labels = { ...(c.Labels ?? {}) };
          for (const p of pairs) c.Labels[p.key] = p.value;
        });
      }
      case 'arg': {
        const args = new Map(state.args);
        const shown: string[] = [];
        for (const def of ins.args) {
          const provided = this.options.buildArgs?.[def.name];
          let value: string | undefined;
          if (provided !== undefined) {
            value = provided;
            this.usedBuildArgs.add(def.name);
          } else if (def.defaultValue !== undefined) value = this.expand(def.defaultValue, this.lookup({ ...state, args }), line);
          else value = this.globalArgs.get(def.name) ?? this.platformArgDefault(def.name);
          args.set(def.name, value);
          shown.push(value === undefined ? def.name : `${def.name}=${value}`);
        }
        return this.configStep({ ...state, args }, ['arg', ins.args.map((a) => a.name)], `ARG ${shown.join(' ')}`, () => undefined);
      }
      case 'workdir':
        return this.workdir(state, ins, ex(ins.value));
      case 'user': {
        const user = ex(ins.value);
        return this.configStep(state, ['user', user], `USER ${user}`, (c) => {
          c.User = user;
        });
      }
      case 'maintainer': {
        const author = ex(ins.value);
        const next = await this.configStep(state, ['maintainer', author], `MAINTAINER ${author}`, () => undefined);
        next.config.author = author;
        return next;
      }
      case 'expose': {
        const ports: string[] = [];
        for (const raw of ins.values.flatMap((v) => this.lex.processWords(v, lookup))) ports.push(...expandPorts(raw));
        // Go prints a map with its keys sorted, which is what Docker's history shows.
        const shown = [...new Set(ports)].sort().map((p) => `${p}:{}`).join(' ');
        return this.configStep(state, ['expose', ports], `EXPOSE map[${shown}]`, (c) => {
          c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
          for (const p of ports) c.ExposedPorts[p] = {};
        });
      }
      case 'volume': {
        const vols = ins.values.map(ex);
        for (const v of vols) if (v.trim() === '') throw new InvalidBuildError('VOLUME specified can not be an empty string');
        return this.configStep(state, ['volume', vols], `VOLUME [${vols.join(' ')}]`, (c) => {
          c.Volumes = { ...(c.Volumes ?? {}) };
          for (const v of vols) c.Volumes[v] = {};
        });
      }
      case 'stopsignal': {
        const signal = ex(ins.value);
        const normalised = /^\d+$/.test(signal) ? signal : signal.toUpperCase().startsWith('SIG') ? signal.toUpperCase() : `SIG${signal.toUpperCase()}`;
        if (!/^\d+$/.test(signal) && !SIGNALS.has(normalised) && !/^SIGRTM(IN|AX)([+-]\d+)?$/.test(normalised)) {
          throw new InvalidBuildError(`invalid signal: ${signal}`);
        }
        return this.configStep(state, ['stopsignal', signal], `STOPSIGNAL ${signal}`, (c) => {
          c.StopSignal = signal;
        });
      }
      case 'cmd': {
        const cmd = ins.empty ? [] : this.commandArgs(state, ins.command);
        const next = await this.configStep(state, ['cmd', cmd], `CMD ${goQuoteList(cmd)}`, (c) => {
          c.Cmd = cmd;
        });
        next.cmdSet = true;
        return next;
      }
      case 'entrypoint': {
        const ep = ins.empty ? [] : this.commandArgs(state, ins.command);
        return this.configStep(state, ['entrypoint', ep], `ENTRYPOINT ${goQuoteList(ep)}`, (c) => {
          c.Entrypoint = ep;
          if (!state.cmdSet) c.Cmd = null;
        });
      }
      case 'shell': {
        const next = await this.configStep(state, ['shell', ins.shell], `SHELL [${ins.shell.join(' ')}]`, (c) => {
          c.Shell = ins.shell;
        });
        next.shell = ins.shell;
        return next;
      }
      case 'healthcheck': {
        let test: string[];
        if (ins.none) test = ['NONE'];
        else if (ins.command?.json) test = ['CMD', ...ins.command.args];
        else test = ['CMD-SHELL', ins.command?.args[0] ?? ''];
        const hc = {
          Test: test,
          ...(ins.interval !== undefined ? { Interval: ins.interval } : {}),
          ...(ins.timeout !== undefined ? { Timeout: ins.timeout } : {}),
          ...(ins.startPeriod !== undefined ? { StartPeriod: ins.startPeriod } : {}),
          ...(ins.startInterval !== undefined ? { StartInterval: ins.startInterval } : {}),
          ...(ins.retries !== undefined ? { Retries: ins.retries } : {}),
        };
        const shown = `&{${goQuoteList(test)} ${[hc.Interval, hc.Timeout, hc.StartPeriod, hc.StartInterval].map((d) => JSON.stringify(goDuration(d ?? 0))).join(' ')} ${goQuoteRune(hc.Retries ?? 0)}}`;
        return this.configStep(state, ['healthcheck', hc], `HEALTHCHECK ${shown}`, (c) => {
          c.Healthcheck = hc;
        });
      }
      case 'onbuild': {
        const expr = ins.expression.replace(/^\s*(\S+)/, (m) => m.toUpperCase());
        return this.configStep(state, ['onbuild', expr], `ONBUILD ${expr}`, (c) => {
          c.OnBuild = [...(c.OnBuild ?? []), expr];
        });
      }
      case 'run':
        return this.run(state, ins, stage);
      case 'copy':
      case 'add':
        return this.copy(state, ins, stage);
    }
  }

  private commandArgs(state: StageState, command: CommandLine): string[] {
    return command.json ? command.args : [...state.shell, command.args[0] ?? ''];
  }

  // ---------------------------------------------------------------- layer steps

  private lowerDirs(state: StageState): string[] {
    const dirs = state.layers.map((l) => this.store.layerDir(l.diffId)).reverse();
    return dirs.length > 0 ? dirs : [this.emptyLayerDir];
  }

  private layered(state: StageState): LayeredFs {
    return new LayeredFs(state.layers.map((l) => this.store.layerDir(l.diffId)).reverse());
  }

  /**
   * Looks the key up (unless --no-cache); on a hit returns the new state without running
   * anything. `produce` makes the upper directory; its layer and the record are committed.
   */
  private async layerStep(
    state: StageState,
    key: string,
    createdBy: string,
    ins: Instruction,
    independentKey: string | undefined,
    produce: (upper: string) => Promise<void>,
  ): Promise<StageState> {
    if (!this.options.noCache) {
      let hit = await this.lookupCache(key);
      if (!hit && independentKey !== undefined) {
        hit = await this.lookupCache(independentKey);
        if (hit) await this.store.record(key, hit.layer, hit.created);
      }
      if (hit) {
        this.cached++;
        this.emit({ type: 'step-cached', step: this.stepOf(ins) });
        return this.withLayer(state, key, hit.layer, createdBy, hit.created);
      }
    }
    const tmp = await this.store.makeTempDir('step');
    try {
      const upper = join(tmp, 'upper');
      await mkdir(upper, { mode: 0o755 });
      await produce(upper);
      const layer = await this.store.commitUpperDir(upper);
      if (layer) this.releases.push(this.store.hold([layer.diffId]));
      const created = new Date().toISOString();
      await this.store.record(key, layer, created);
      if (independentKey !== undefined) await this.store.record(independentKey, layer, created);
      this.executed++;
      return this.withLayer(state, key, layer, createdBy, created);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  private async lookupCache(key: string): Promise<{ layer?: LayerMeta; created: string } | undefined> {
    const record = await this.store.lookup(key);
    if (record) {
      const layer = record.layer ? await this.store.getLayer(record.layer.diffId) : undefined;
      if (record.layer && !layer) return undefined;
      if (layer) this.releases.push(this.store.hold([layer.diffId]));
      return { layer, created: record.created };
    }
    const imported = this.importedCache.get(key);
    if (imported) {
      const layer = imported.layer ? await this.store.ensureLayer(imported.layer) : undefined;
      if (layer) this.releases.push(this.store.hold([layer.diffId]));
      await this.store.record(key, layer, imported.created);
      return { layer, created: imported.created };
    }
    return undefined;
  }

  private withLayer(state: StageState, key: string, layer: LayerRef | undefined, createdBy: string, created: string): StageState {
    const config = structuredClone(state.config);
    const layers = [...state.layers];
    if (layer) {
      layers.push(layer as LayerMeta);
      config.rootfs = { type: 'layers', diff_ids: [...config.rootfs.diff_ids, layer.diffId] };
    }
    const next: StageState = { ...state, key, layers, config, created: layer ? created : state.created };
    this.history(next, createdBy, !layer, created, key);
    return next;
  }

  private async workdir(state: StageState, ins: Instruction, value: string): Promise<StageState> {
    const dir = posix.resolve(state.config.config?.WorkingDir || '/', value);
    const payload = ['workdir', dir, state.config.config?.User ?? ''];
    const fs = this.layered(state);
    const resolved = await resolveScoped(fs, dir);
    if ((await fs.lstat(resolved))?.kind === 'directory') {
      return this.configStep(state, payload, `WORKDIR ${dir}`, (c) => {
        c.WorkingDir = dir;
      });
    }
    // A missing directory is created (owned by the current USER) as a layer of its own.
    const config = structuredClone(state.config);
    config.config ??= {};
    config.config.WorkingDir = dir;
    const user = await resolveUser(fs, state.config.config?.User ?? '');
    return this.layerStep({ ...state, config }, sha([state.key, ...payload]), `WORKDIR ${dir}`, ins, undefined, async (upper) => {
      const writer = new UpperWriter(upper, this.lowerDirs(state).filter((d) => d !== this.emptyLayerDir));
      await writer.ensureDir(resolved, { mode: 0o755, uid: user.uid, gid: user.gid });
      await writer.finish();
    });
  }

  // ---------------------------------------------------------------- RUN

  private async run(state: StageState, ins: RunInstruction, stage: Stage): Promise<StageState> {
    const lookup = this.lookup(state);
    const line = ins.loc.startLine;
    let argv: string[];
    const heredocFiles: { name: string; content: string }[] = [];
    if (!ins.command.json && ins.heredocs.length > 0) {
      const cmd = ins.command.args[0] ?? '';
      const single = ins.heredocs.length === 1 && /^\d*<<-?\S+$/.test(cmd.trim()) ? ins.heredocs[0] : undefined;
      if (single) {
        const content = single.chomp ? chompHeredocContent(single.content) : single.content;
        if (content.startsWith('#!')) {
          heredocFiles.push({ name: single.name, content });
          argv = [`/dev/pipes/${single.name}`];
        } else argv = [...state.shell, content];
      } else {
        let full = cmd;
        for (const h of ins.heredocs) full += `\n${h.content}${h.name}`;
        argv = [...state.shell, full];
      }
    } else argv = this.commandArgs(state, ins.command);

    // Build args in scope reach RUN as environment (ENV wins) and are part of its cache key.
    const envNames = new Set((state.config.config?.Env ?? []).map((e) => e.split('=')[0]));
    const argEnv: string[] = [];
    for (const [name, value] of state.args) if (value !== undefined && !envNames.has(name)) argEnv.push(`${name}=${value}`);
    const proxyEnv: string[] = [];
    for (const name of PROXY_ARGS) {
      const v = this.options.buildArgs?.[name];
      if (v !== undefined && !state.args.has(name) && !envNames.has(name)) proxyEnv.push(`${name}=${v}`);
    }
    const mounts = ins.mounts.map((m) => {
      try {
        return parseRunMount(this.expand(m, lookup, line));
      } catch (error) {
        if (error instanceof BuildError) throw new DockerfileParseError(error.message, line, 1, line, { cause: error });
        throw error;
      }
    });
    const network: BuildNetworkMode = (ins.network as BuildNetworkMode | undefined) ?? this.options.network ?? 'default';
    const insecure = ins.security === 'insecure';
    if (insecure && !this.options.allowInsecure) {
      throw new InvalidBuildError('RUN --security=insecure is not allowed (the build must grant security.insecure)');
    }
    const mountKeys: unknown[] = [];
    for (const m of mounts) {
      if (m.type === 'bind') mountKeys.push(['bind', m.target, m.source ?? '', m.readonly, await this.bindSourceKey(m, stage)]);
      else if (m.type === 'secret') mountKeys.push(['secret', m.id, m.target ?? '', m.env ?? '']);
      else mountKeys.push([m.type, m.target, m.id ?? '', m.readonly, m.sharing]);
    }
    const key = sha([state.key, 'run', argv, argEnv, mountKeys, network, insecure, heredocFiles]);
    const argsPrefix = argEnv.length > 0 ? `|${argEnv.length} ${argEnv.join(' ')} ` : '';
    const createdBy = `RUN ${argsPrefix}${argv.join(' ')} # buildkit`;

    return this.layerStep(state, key, createdBy, ins, undefined, async (upper) => {
      const work = join(upper, '..', 'work');
      const scratch = join(upper, '..', 'scratch');
      await mkdir(work);
      await mkdir(scratch);
      const lowers = this.lowerDirs(state);
      const fs = this.layered(state);
      const user = await resolveUser(fs, state.config.config?.User ?? '');
      const workdir = state.config.config?.WorkingDir || '/';
      const env = [...(state.config.config?.Env ?? []), ...argEnv, ...proxyEnv];
      const { specs: extraMounts, env: secretEnv, targets } = await this.runMounts(mounts, state, stage, fs, workdir, scratch);
      for (const file of heredocFiles) {
        const path = join(scratch, `heredoc-${file.name}`);
        await writeFile(path, file.content, { mode: 0o755 });
        extraMounts.push({ type: 'bind', source: path, target: `/dev/pipes/${file.name}`, options: ['rbind', 'ro'] });
      }
      const rootfs: Mount[] = [
        {
          type: 'overlay',
          source: 'overlay',
          target: '/',
          options: [`lowerdir=${lowers.join(':')}`, `upperdir=${upper}`, `workdir=${work}`, 'redirect_dir=off'],
        },
      ];
      const step = this.stepOf(ins);
      const lines = { stdout: '', stderr: '' };
      const onOutput = (stream: 'stdout' | 'stderr', chunk: Buffer): void => {
        lines[stream] += chunk.toString('utf8');
        let nl: number;
        while ((nl = lines[stream].indexOf('\n')) >= 0) {
          this.emit({ type: 'step-output', step, stream, line: lines[stream].slice(0, nl) });
          lines[stream] = lines[stream].slice(nl + 1);
        }
      };
      const result = await this.builder.executor.run({
        id: `berth-build-${randomBytes(12).toString('hex')}`,
        rootfs,
        process: { args: argv, env: [...env, ...secretEnv], cwd: workdir, user, hostname: 'buildkitsandbox' },
        mounts: extraMounts,
        network,
        insecure,
        onOutput,
        ...(this.options.outputReady ? { outputReady: this.options.outputReady } : {}),
        signal: this.signal,
      });
      for (const stream of ['stdout', 'stderr'] as const) {
        if (lines[stream] !== '') this.emit({ type: 'step-output', step, stream, line: lines[stream] });
      }
      if (result.exitCode !== 0) throw new RunStepFailedError(argv.join(' '), result.exitCode);
      await removeMountStubs(upper, fs, [...targets, ...heredocFiles.map((f) => `/dev/pipes/${f.name}`)]);
      await rm(work, { recursive: true, force: true });
    });
  }

  private async bindSourceKey(m: RunMount, stage: Stage): Promise<string> {
    if (m.from !== undefined) {
      const dep = this.stageByName(m.from, stage.index);
      if (dep) return `stage:${(await this.getStage(dep)).key}:${m.source ?? ''}`;
      const image = await this.builder.images.resolveImage(m.from, { platform: this.platform });
      return `image:${image.id}:${m.source ?? ''}`;
    }
    const [rel] = await this.context.resolveSources(m.source ?? '.', undefined);
    return `context:${await hashContextPath(this.context.root, rel ?? '', (p, isDir) => this.context.isIgnored(p, isDir))}`;
  }

  private async sourceLayers(from: string, stage: Stage): Promise<{ dirs: string[]; key: string; fs: LayeredFs }> {
    const dep = this.stageByName(from, stage.index);
    if (dep) {
      const s = await this.getStage(dep);
      const dirs = s.layers.map((l) => this.store.layerDir(l.diffId)).reverse();
      return { dirs, key: `stage:${s.key}`, fs: new LayeredFs(dirs) };
    }
    const image = await this.builder.images.resolveImage(from, { platform: this.platform, signal: this.signal });
    const layers = await Promise.all(image.layers.map((l) => this.store.ensureLayer(l)));
    this.releases.push(this.store.hold(layers.map((l) => l.diffId)));
    const dirs = layers.map((l) => this.store.layerDir(l.diffId)).reverse();
    return { dirs, key: `image:${image.id}`, fs: new LayeredFs(dirs) };
  }

  private async runMounts(
    mounts: RunMount[],
    state: StageState,
    stage: Stage,
    fs: LayeredFs,
    workdir: string,
    scratch: string,
  ): Promise<{ specs: Mount[]; env: string[]; targets: string[] }> {
    const specs: Mount[] = [];
    const env: string[] = [];
    const targets: string[] = [];
    let n = 0;
    for (const m of mounts) {
      n++;
      let target: string | undefined;
      if (m.target !== undefined) {
        // Confined to the root: a target that a previous step turned into a symlink cannot
        // send the mount outside it (CVE-2024-23651/23652).
        const abs = posix.resolve(workdir, m.target);
        target = `/${(await resolveScoped(fs, abs)).join('/')}`;
        if (target === '/') throw new InvalidBuildError(`cannot mount over the root directory (${m.target})`);
        targets.push(target);
      }
      switch (m.type) {
        case 'bind': {
          if (m.from !== undefined) {
            const src = await this.sourceLayers(m.from, stage);
            const sub = splitPath(m.source ?? '/');
            const dirs: string[] = [];
            for (const d of src.dirs) {
              const st = await lstat(join(d, ...sub)).catch(() => undefined);
              if (st?.isDirectory()) dirs.push(join(d, ...sub));
            }
            if (dirs.length === 0) throw new InvalidBuildError(`bind mount source ${m.source ?? '/'} not found in ${m.from}`);
            specs.push(await this.overlayMount(dirs, target as string, m.readonly, scratch, n));
          } else {
            const [rel] = await this.context.resolveSources(m.source ?? '.', undefined);
            const host = this.context.hostPath(rel ?? '');
            const st = await lstat(host);
            if (st.isDirectory()) specs.push(await this.overlayMount([host], target as string, m.readonly, scratch, n));
            else specs.push({ type: 'bind', source: host, target, options: ['rbind', m.readonly ? 'ro' : 'rw'] });
          }
          break;
        }
        case 'cache': {
          const id = `${m.id ?? m.target}`;
          const dir = await this.store.cacheMountDir(id, { uid: m.uid ?? 0, gid: m.gid ?? 0, mode: m.mode ?? 0o755 });
          this.releases.push(this.store.hold([`mount:${dir.split('/').pop()}`]));
          specs.push({ type: 'bind', source: dir, target, options: ['rbind', m.readonly ? 'ro' : 'rw'] });
          break;
        }
        case 'tmpfs':
          specs.push({ type: 'tmpfs', source: 'tmpfs', target, options: ['nosuid', 'nodev', `size=${m.size ?? 64 * 1024 * 1024}`] });
          break;
        case 'secret': {
          const value = this.options.secrets?.[m.id ?? ''];
          if (value === undefined) {
            if (m.required) throw new InvalidBuildError(`secret ${m.id} not found`);
            break;
          }
          const bytes = typeof value === 'string' ? Buffer.from(value) : Buffer.from(value);
          if (m.env !== undefined) env.push(`${m.env}=${bytes.toString('utf8')}`);
          if (target !== undefined && (m.env === undefined || m.target !== undefined)) {
            const file = join(scratch, `secret-${n}`);
            await writeFile(file, bytes, { mode: m.mode ?? 0o400 });
            await chmod(file, m.mode ?? 0o400);
            await chown(file, m.uid ?? 0, m.gid ?? 0);
            specs.push({ type: 'bind', source: file, target, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] });
          }
          break;
        }
        case 'ssh':
          throw new NotImplementedError('RUN --mount=type=ssh');
      }
    }
    return { specs, env, targets };
  }

  /** A directory mount whose writes are thrown away (rw) or refused (ro). */
  private async overlayMount(lowers: string[], target: string, readonly: boolean, scratch: string, n: number): Promise<Mount> {
    if (readonly) {
      if (lowers.length === 1) return { type: 'bind', source: lowers[0] as string, target, options: ['rbind', 'ro'] };
      return { type: 'overlay', source: 'overlay', target, options: [`lowerdir=${lowers.join(':')}`, 'ro'] };
    }
    const upper = join(scratch, `mount-${n}-upper`);
    const work = join(scratch, `mount-${n}-work`);
    await mkdir(upper);
    await mkdir(work);
    return { type: 'overlay', source: 'overlay', target, options: [`lowerdir=${lowers.join(':')}`, `upperdir=${upper}`, `workdir=${work}`] };
  }

  // ---------------------------------------------------------------- COPY / ADD

  private async copy(state: StageState, ins: CopyInstruction, stage: Stage): Promise<StageState> {
    const lookup = this.lookup(state);
    const line = ins.loc.startLine;
    const ex = (w: string) => this.expand(w, lookup, line);
    const isAdd = ins.kind === 'add';
    const sources = ins.sources.map(ex);
    const destRaw = ex(ins.dest);
    const workdir = state.config.config?.WorkingDir || '/';
    const dest = posix.isAbsolute(destRaw) ? destRaw : posix.join(workdir, destRaw) + (destRaw.endsWith('/') || destRaw === '.' ? '/' : '');
    const from = ins.from !== undefined ? ex(ins.from) : undefined;
    const chown = ins.chown !== undefined ? ex(ins.chown) : undefined;
    const chmod = ins.chmod !== undefined ? ex(ins.chmod) : undefined;
    const excludes = ins.exclude.map(ex);
    const excludeMatcher = excludes.length > 0 ? IgnoreMatcher.fromText(excludes.join('\n')) : undefined;
    const heredocs = ins.heredocs.map((h) => ({
      name: h.name,
      content: h.expand ? this.expandHeredoc(h, lookup, line) : h.content,
    }));

    // Sources: resolved and hashed for the cache key before anything is copied.
    interface Resolved {
      tree: SourceTree;
      rel: string;
      archive?: ArchiveKind;
      url?: { url: string; bytes: Buffer; filename: string; mtime: Date };
    }
    const resolved: Resolved[] = [];
    const hashes: string[] = [];
    // --exclude patterns apply to paths relative to each source (a matched file: its name).
    const excludeHit = (rel: string, base: string, isDir: boolean): boolean => {
      if (!excludeMatcher) return false;
      const relative = rel === base ? posix.basename(rel) : base === '' ? rel : rel.startsWith(`${base}/`) ? rel.slice(base.length + 1) : rel;
      return excludeMatcher.ignores(relative) && !(isDir && excludeMatcher.hasExceptions);
    };
    const topLevel = (rel: string, isDir: boolean) => excludeHit(rel, rel, isDir);
    if (from !== undefined) {
      if (isAdd) throw new InvalidBuildError('ADD does not support --from');
      const src = await this.sourceLayers(from, stage);
      for (const s of sources) {
        for (const rel of await resolveSourcePaths(src.fs, s, topLevel, `stage ${from}`)) {
          resolved.push({ tree: layeredSourceTree(src.fs, (p, isDir) => excludeHit(p, rel, isDir)), rel });
          hashes.push(`${src.key}:${rel}`);
        }
      }
    } else {
      for (const s of sources) {
        if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) {
          if (!isAdd) throw new InvalidBuildError(`source can't be a URL for COPY: ${s}`);
          if (/^git@|\.git(#|$)/.test(s)) throw new NotImplementedError('ADD from a git repository');
          const fetched = await this.fetchUrl(s, ins.checksum !== undefined ? ex(ins.checksum) : undefined);
          resolved.push({ tree: directorySourceTree(this.context.root), rel: '', url: { url: s, ...fetched } });
          hashes.push(`url:${s}:${digestOf(fetched.bytes)}`);
          continue;
        }
        for (const rel of await resolveSourcePaths(this.context.scopedFs, s, (p, isDir) => this.context.isExcluded(p, isDir) || topLevel(p, isDir), 'build context')) {
          const excluded = (p: string, isDir: boolean) => this.context.isExcluded(p, isDir) || excludeHit(p, rel, isDir);
          const archive = isAdd ? await archiveKind(this.context.hostPath(rel)) : undefined;
          resolved.push({ tree: directorySourceTree(this.context.root, excluded), rel, archive });
          hashes.push(`${archive ? 'archive' : 'context'}:${rel}:${await hashContextPath(this.context.root, rel, excluded)}`);
        }
      }
      if (ins.checksum !== undefined && resolved.some((r) => !r.url)) {
        throw new InvalidBuildError('checksum can\'t be specified for non-HTTP(S) sources');
      }
    }
    for (const h of heredocs) hashes.push(`heredoc:${h.name}:${digestOf(h.content)}`);

    // --link: the layer depends only on the instruction and the copied content, so a changed
    // parent reuses it (`linkKey`); the stage's identity still chains through the parent.
    const contentKey = sha([ins.kind, dest, chown ?? '', chmod ?? '', ins.parents, excludes, hashes]);
    const linkKey = ins.link ? sha(['link', contentKey]) : undefined;
    const key = sha([state.key, workdir, contentKey]);
    const flags = [
      ins.checksum !== undefined ? `--checksum=${ex(ins.checksum)}` : '',
      from !== undefined ? `--from=${from}` : '',
      chown !== undefined ? `--chown=${chown}` : '',
      chmod !== undefined ? `--chmod=${chmod}` : '',
      ins.link ? '--link' : '',
      ...excludes.map((e) => `--exclude=${e}`),
    ].filter(Boolean);
    const shownSources = [...sources, ...ins.heredocs.map((h) => `<<${h.name}`)];
    const createdBy = `${ins.kind.toUpperCase()} ${flags.length ? `${flags.join(' ')} ` : ''}${shownSources.join(' ')} ${ins.dest} # buildkit`;

    return this.layerStep(state, key, createdBy, ins, linkKey, async (upper) => {
      const lowerLayers = ins.link ? [] : this.lowerDirs(state).filter((d) => d !== this.emptyLayerDir);
      const writer = new UpperWriter(upper, lowerLayers);
      const owner = chown !== undefined ? await resolveChown(ins.link ? this.layered(state) : writer.view, chown) : { uid: 0, gid: 0 };
      const mode = chmod !== undefined ? parseChmod(chmod) : undefined;
      const count = resolved.length + heredocs.length;
      const destIsDir = dest.endsWith('/') || count > 1 || (await writer.isDirectory(await writer.resolve(dest, true)));
      if (count > 1 && !dest.endsWith('/')) {
        throw new InvalidBuildError(`When using ${ins.kind.toUpperCase()} with more than one source file, the destination must be a directory and end with a /`);
      }
      const destDir = destIsDir ? await writer.resolve(dest, true) : undefined;
      for (const h of heredocs) {
        const parts = destDir ? [...destDir, h.name] : await writer.resolve(dest, false);
        await writer.writeFile(parts, Buffer.from(h.content), { mode: mode ? mode(0o644, false) : 0o644, uid: owner.uid, gid: owner.gid, mtime: new Date(0) });
      }
      for (const r of resolved) {
        if (r.url) {
          const parts = destDir ? [...destDir, r.url.filename] : await writer.resolve(dest, false);
          await writer.writeFile(parts, r.url.bytes, { mode: mode ? mode(0o600, false) : 0o600, uid: owner.uid, gid: owner.gid, mtime: r.url.mtime });
          continue;
        }
        const srcParts = splitPath(r.rel);
        if (r.archive) {
          const target = destDir ?? (await writer.resolve(dest, true));
          await this.extractArchive(r.tree, srcParts, r.archive, writer, target, chown !== undefined ? owner : undefined, mode);
          continue;
        }
        const st = await r.tree.stat(srcParts);
        const isDir = st?.isDirectory() ?? false;
        let target: string[];
        if (ins.parents) {
          const base = destDir ?? (await writer.resolve(dest, true));
          target = [...base, ...srcParts];
        } else if (isDir) target = destDir ?? (await writer.resolve(dest, true));
        else target = destDir ? [...destDir, srcParts[srcParts.length - 1] ?? ''] : await writer.resolve(dest, false);
        await writer.copy(r.tree, srcParts, target, { owner, chmod: mode });
      }
      await writer.finish();
    });
  }

  private expandHeredoc(h: Heredoc, lookup: (n: string) => string | undefined, line: number): string {
    try {
      return this.heredocLex.processWord(h.content, lookup);
    } catch (error) {
      if (error instanceof ShellLexError) throw new DockerfileParseError(error.message, line, 1, line, { cause: error });
      throw error;
    }
  }

  private async extractArchive(
    tree: SourceTree,
    srcParts: string[],
    kind: ArchiveKind,
    writer: UpperWriter,
    target: string[],
    owner: { uid: number; gid: number } | undefined,
    mode: ((m: number, d: boolean) => number) | undefined,
  ): Promise<void> {
    const dir = await this.store.makeTempDir('extract');
    try {
      await pipeline(openArchive(await tree.hostPath(srcParts), kind), tar.x({ cwd: dir, preservePaths: false, preserveOwner: true, strict: true }));
      await writer.copy(directorySourceTree(dir), [], target, { owner, chmod: mode });
    } catch (error) {
      if (error instanceof BuildError) throw error;
      throw new InvalidBuildError(`cannot extract /${srcParts.join('/')}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private async fetchUrl(url: string, checksum: string | undefined): Promise<{ bytes: Buffer; filename: string; mtime: Date }> {
    let response: Response;
    try {
      response = await (this.builder.fetchImpl)(url, { redirect: 'follow', signal: this.signal });
    } catch (error) {
      throw new InvalidBuildError(`failed to fetch ${url}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    if (!response.ok) throw new InvalidBuildError(`failed to fetch ${url}: HTTP ${response.status}`);
    const bytes = Buffer.from(await response.arrayBuffer());
    if (checksum !== undefined) {
      const algo = checksum.split(':')[0];
      if (algo !== 'sha256' && algo !== 'sha512') throw new InvalidBuildError(`unsupported checksum algorithm in ${checksum}`);
      const actual = digestOf(bytes, algo);
      if (actual !== checksum) throw new InvalidBuildError(`digest mismatch for ${url}: expected ${checksum}, got ${actual}`);
    }
    const disposition = /filename="?([^";]+)"?/.exec(response.headers.get('content-disposition') ?? '')?.[1];
    const fromPath = new URL(url).pathname.split('/').filter(Boolean).pop();
    const filename = posix.basename(disposition ?? fromPath ?? '__unnamed__') || '__unnamed__';
    const lm = response.headers.get('last-modified');
    const mtime = lm ? new Date(lm) : new Date(0);
    return { bytes, filename, mtime: Number.isNaN(mtime.getTime()) ? new Date(0) : mtime };
  }

  // ---------------------------------------------------------------- image

  async finish(state: StageState, labels: Record<string, string> | undefined): Promise<BuiltImage> {
    const config = structuredClone(state.config);
    if (labels && Object.keys(labels).length > 0) {
      config.config ??= {};
      config.config.Labels = { ...(config.config.Labels ?? {}), ...labels };
    }
    const history = config.history ?? [];
    config.created = history[history.length - 1]?.created ?? state.created;
    config.rootfs = { type: 'layers', diff_ids: state.layers.map((l) => l.diffId) };
    const configBytes = Buffer.from(JSON.stringify(config));
    const configDigest = digestOf(configBytes);
    const layers: Descriptor[] = state.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size }));
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.ImageManifest,
      config: { mediaType: MediaType.ImageConfig, digest: configDigest, size: configBytes.length },
      layers,
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    return {
      manifest,
      manifestBytes,
      manifestDigest: digestOf(manifestBytes),
      config,
      configBytes,
      configDigest,
      layers: state.layers.map((l, i) => ({
        descriptor: layers[i] as Descriptor,
        diffId: l.diffId,
        open: () => this.store.content.reader(l.digest),
      })),
    };
  }

  release(): void {
    for (const r of this.releases.splice(0)) r();
  }
}

function expandPorts(raw: string): string[] {
  const m = /^(?:(?:\d{1,3}\.){3}\d{1,3}:)?(?:[^:]*:)?(\d+)(?:-(\d+))?(?:\/(\w+))?$/.exec(raw.trim());
  if (!m) throw new InvalidBuildError(`invalid port: ${raw}`);
  const start = Number(m[1]);
  const end = m[2] !== undefined ? Number(m[2]) : start;
  const proto = (m[3] ?? 'tcp').toLowerCase();
  if (!['tcp', 'udp', 'sctp'].includes(proto)) throw new InvalidBuildError(`invalid proto: ${proto}`);
  if (start < 1 || end > 65535 || end < start) throw new InvalidBuildError(`invalid port range: ${raw}`);
  const out: string[] = [];
  for (let p = start; p <= end; p++) out.push(`${p}/${proto}`);
  return out;
}

/** Go's time.Duration.String() for nanoseconds. */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const neg = ns < 0;
  let d = Math.abs(ns);
  let out: string;
  if (d < 1e9) {
    const [unit, div] = d < 1e3 ? ['ns', 1] : d < 1e6 ? ['µs', 1e3] : ['ms', 1e6];
    out = `${trimFraction(d / (div as number))}${unit}`;
  } else {
    const h = Math.floor(d / 3600e9);
    d -= h * 3600e9;
    const m = Math.floor(d / 60e9);
    d -= m * 60e9;
    const sec = `${trimFraction(d / 1e9)}s`;
    out = h > 0 ? `${h}h${m}m${sec}` : m > 0 ? `${m}m${sec}` : sec;
  }
  return neg ? `-${out}` : out;
}

function trimFraction(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(9).replace(/0+$/, '').replace(/\.$/, '');
}

/** Go's %q of an int (strconv.QuoteRune), as BuildKit prints HEALTHCHECK retries. */
function goQuoteRune(r: number): string {
  const named: Record<number, string> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r', 39: "\\'", 92: '\\\\' };
  if (named[r] !== undefined) return `'${named[r]}'`;
  if (r >= 32 && r < 127) return `'${String.fromCharCode(r)}'`;
  if (r < 0x80) return `'\\x${r.toString(16).padStart(2, '0')}'`;
  if (r < 0x10000) return `'\\u${r.toString(16).padStart(4, '0')}'`;
  return `'\\U${r.toString(16).padStart(8, '0')}'`;
}

/** Go's %q of a []string, as Docker's history shows CMD and ENTRYPOINT. */
function goQuoteList(list: string[]): string {
  return `[${list.map((s) => JSON.stringify(s)).join(' ')}]`;
}

type ArchiveKind = 'tar' | 'gzip' | 'zstd' | 'xz' | 'bzip2';

/** The archive's uncompressed bytes (gzip and zstd in-process, xz and bzip2 via the system tools). */
function openArchive(path: string, kind: ArchiveKind): Readable {
  if (kind === 'xz' || kind === 'bzip2') {
    const child = spawn(kind, ['-dc', path], { stdio: ['ignore', 'pipe', 'ignore'] });
    return child.stdout;
  }
  const raw = createReadStream(path);
  if (kind === 'tar') return raw;
  return Readable.from(decompressStream(raw));
}

/**
 * What ADD does with a local file: a tar (plain, gzip, zstd, xz or bzip2 compressed) is
 * extracted; anything else — including a compressed file that is not a tar — is copied.
 */
async function archiveKind(path: string): Promise<ArchiveKind | undefined> {
  const st = await lstat(path).catch(() => undefined);
  if (!st?.isFile() || st.size < 4) return undefined;
  const fh = await open(path, 'r');
  let head: Buffer;
  try {
    head = Buffer.alloc(6);
    await fh.read(head, 0, 6, 0);
  } finally {
    await fh.close();
  }
  let kind: ArchiveKind = 'tar';
  if (head[0] === 0x1f && head[1] === 0x8b) kind = 'gzip';
  else if (head.readUInt32LE(0) === 0xfd2fb528) kind = 'zstd';
  else if (head.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) kind = 'xz';
  else if (head.subarray(0, 3).toString('latin1') === 'BZh') kind = 'bzip2';
  // Look at the first uncompressed block for a tar header.
  const stream = openArchive(path, kind);
  let block = Buffer.alloc(0);
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      block = Buffer.concat([block, chunk]);
      if (block.length >= 512) break;
    }
  } catch {
    return undefined;
  } finally {
    stream.destroy();
  }
  return block.length >= 512 && isTarHeader(block.subarray(0, 512)) ? kind : undefined;
}

/** A tar header block: `ustar` magic, or (old v7 tars) a matching header checksum. */
function isTarHeader(block: Buffer): boolean {
  if (block.subarray(257, 262).toString('latin1') === 'ustar') return true;
  const stored = Number.parseInt(block.subarray(148, 156).toString('latin1').replace(/\0.*$/, '').trim(), 8);
  if (!Number.isFinite(stored)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (block[i] as number);
  return sum === stored;
}

/**
 * After a RUN, drops what the runtime created only to mount over (empty files and directories
 * at mount targets that did not exist in the image, and their empty new parents), as BuildKit
 * does, so mount points never end up in the layer.
 */
async function removeMountStubs(upper: string, lower: LayeredFs, targets: string[]): Promise<void> {
  for (const target of targets) {
    let parts = splitPath(target);
    while (parts.length > 0) {
      if (await lower.lstat(parts)) break;
      const p = join(upper, ...parts);
      const st = await lstat(p).catch(() => undefined);
      if (!st) break;
      if (st.isDirectory()) {
        if ((await readdir(p)).length > 0) break;
        await rmdir(p);
      } else if (st.isFile() && st.size === 0) await rm(p);
      else break;
      parts = parts.slice(0, -1);
    }
  }
}

/**
 * Builds images from Dockerfiles. One Builder per state directory; builds may run
 * concurrently. RUN steps go to the executor; nothing else leaves the process.
 */
export class Builder {
  readonly executor: BuildExecutor;
  readonly images: BuildImageSource;
  readonly fetchImpl: typeof fetch;
  private readonly defaultStore?: BuildImageStore;
  private readonly cacheMaxBytes: number;

  private constructor(
    readonly store: BuildStore,
    options: BuilderOptions,
  ) {
    this.executor = options.executor;
    this.images = options.images;
    this.defaultStore = options.store;
    this.cacheMaxBytes = options.cacheMaxBytes ?? 10 * 1024 ** 3;
    this.fetchImpl = options.fetch ?? fetch;
  }

  static async open(options: BuilderOptions): Promise<Builder> {
    const store = await BuildStore.open(options.root);
    await mkdir(join(options.root, 'empty'), { recursive: true, mode: 0o755 });
    return new Builder(store, options);
  }

  /** Bytes and entries the build cache holds. */
  usage(): ReturnType<BuildStore['usage']> {
    return this.store.usage();
  }

  /** Shrinks the cache to `maxBytes` (default: the configured limit; 0 empties it). */
  prune(maxBytes = this.cacheMaxBytes): ReturnType<BuildStore['prune']> {
    return this.store.prune(maxBytes);
  }

  async build(options: BuildOptions): Promise<BuildResult> {
    let context: BuildContext;
    if (typeof options.context === 'string') {
      // A Dockerfile-specific ignore file (`app.Dockerfile.dockerignore`) wins over .dockerignore.
      context = await BuildContext.fromDirectory(options.context);
      const specific = options.dockerfile !== undefined ? await context.readFile(`${options.dockerfile}.dockerignore`).catch(() => undefined) : undefined;
      if (specific !== undefined) context = await BuildContext.fromDirectory(options.context, { ignore: specific.toString('utf8') });
    } else context = options.context;
    let text = options.dockerfileText;
    if (text === undefined) text = (await context.readFile(options.dockerfile ?? 'Dockerfile')).toString('utf8');
    const dockerfile = parseDockerfile(text);
    const run = new BuildRun(this, this.store, dockerfile, context, options, join(this.store.root, 'empty'));
    try {
      for (const w of dockerfile.warnings) run.warn(w);
      let target: Stage | undefined;
      if (options.target !== undefined) {
        const t = options.target.toLowerCase();
        target = dockerfile.stages.find((s) => s.name === t) ?? (/^\d+$/.test(t) ? dockerfile.stages[Number(t)] : undefined);
        if (!target) throw new InvalidBuildError(`target stage "${options.target}" could not be found`);
      } else target = dockerfile.stages[dockerfile.stages.length - 1] as Stage;
      const needed = run.neededStages(target);
      run.numberSteps(needed);
      if (options.cacheFrom?.length) await run.importCacheFrom(options.cacheFrom);
      // Independent stages start at once; a stage waits only for the stages it reads from.
      const states = needed.map((s) => run.getStage(s));
      let finalState: StageState;
      try {
        finalState = await run.getStage(target);
        await Promise.all(states);
      } catch (error) {
        // Nothing of this build keeps running after it returns: the abort stops the other
        // stages' steps, and they are waited for.
        await Promise.allSettled(states);
        throw run.firstError ?? error;
      }
      const unused = run.unusedBuildArgs(needed);
      if (unused.length > 0) run.warn(`[Warning] One or more build-args [${unused.join(' ')}] were not consumed`);
      const image = await run.finish(finalState, options.labels);
      const tags = options.tags ?? [];
      const output: BuildOutput = options.output ?? (this.defaultStore ? { type: 'store', store: this.defaultStore } : { type: 'none' });
      switch (output.type) {
        case 'store':
          await output.store.putImage(image, tags);
          break;
        case 'oci-layout':
          await writeOciLayout(output.dest, image, tags);
          break;
        case 'docker-archive':
          await writeDockerArchive(output.dest, image, tags);
          break;
        case 'none':
          break;
      }
      options.onEvent?.({ type: 'image', id: image.configDigest, manifestDigest: image.manifestDigest, tags });
      return {
        id: image.configDigest,
        manifestDigest: image.manifestDigest,
        config: image.config,
        manifest: image.manifest,
        tags,
        steps: { total: run.total, cached: run.cached, executed: run.executed },
        warnings: run.warnings,
      };
    } finally {
      run.release();
      if (typeof options.context === 'string') await context.close();
      // The cache limit holds after every build (what this build still holds was released above).
      await this.store.prune(this.cacheMaxBytes).catch(() => undefined);
    }
  }

  /** Reads a finished image's layer from the builder's content store. */
  async readBlob(digest: string): Promise<Buffer> {
    return readFile(this.store.content.path(digest));
  }
}

/** Opens a builder over a state directory. */
export function openBuilder(options: BuilderOptions): Promise<Builder> {
  return Builder.open(options);
}

