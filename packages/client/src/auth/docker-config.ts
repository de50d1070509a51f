// fs.promises is read on use: importing node:fs/promises loads it (and readline) at start-up.
import { promises as fsp } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { ClientError } from '../errors.js';
import type { AuthConfig } from '../types/image.js';

/** The key docker uses for Docker Hub in config.json. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

/** The parts of ~/.docker/config.json that concern registry credentials. */
export interface DockerConfigFile {
  auths?: Record<string, { auth?: string; identitytoken?: string; email?: string; username?: string; password?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [key: string]: unknown;
}

/** `$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG || join(homedir(), '.docker'), 'config.json');
}

export async function readDockerConfig(path = dockerConfigPath()): Promise<DockerConfigFile> {
  let text: string;
  try {
    text = await fsp.readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ClientError('CONFIG_UNREADABLE', 'invalid', `cannot read ${path}`, { cause: error });
  }
  try {
    return JSON.parse(text) as DockerConfigFile;
  } catch (error) {
    throw new ClientError('CONFIG_UNREADABLE', 'invalid', `${path} is not valid JSON`, { cause: error });
  }
}

/** Writes config.json atomically (temp file + rename), mode 0600. */
export async function writeDockerConfig(config: DockerConfigFile, path = dockerConfigPath()): Promise<void> {
  await fsp.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, `${JSON.stringify(config, null, '\t')}\n`, { mode: 0o600 });
  await fsp.rename(tmp, path);
}

/** The config.json key for a registry host: Docker Hub's legacy URL for docker.io, the host otherwise. */
export function authKeyFor(registry: string): string {
  if (registry === 'docker.io' || registry === 'index.docker.io' || registry === 'registry-1.docker.io' || registry === DOCKER_HUB_AUTH_KEY) return DOCKER_HUB_AUTH_KEY;
  return registry.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
}

/**
 * Credentials for `registry` the way the docker CLI finds them: a per-registry credential helper,
 * then the global `credsStore`, then the inline `auths` entry. Undefined when there are none.
 */
export async function resolveAuth(registry: string, config?: DockerConfigFile): Promise<AuthConfig | undefined> {
  const cfg = config ?? (await readDockerConfig());
  const key = authKeyFor(registry);
  const helper = cfg.credHelpers?.[key] ?? cfg.credHelpers?.[registry] ?? cfg.credsStore;
  if (helper) {
    const fromHelper = await credentialHelperGet(helper, key);
    if (fromHelper) return fromHelper;
  }
  const entry = cfg.auths?.[key] ?? cfg.auths?.[registry] ?? cfg.auths?.[`https://${key}`] ?? cfg.auths?.[`http://${key}`];
  if (!entry) return undefined;
  const out: AuthConfig = { serveraddress: key };
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new ClientError('CONFIG_UNREADABLE', 'invalid', `the stored credentials for ${key} are malformed (auth is not base64 user:password)`);
    out.username = decoded.slice(0, colon);
    out.password = decoded.slice(colon + 1);
  }
  if (entry.username) out.username = entry.username;
  if (entry.password) out.password = entry.password;
  if (entry.identitytoken) out.identitytoken = entry.identitytoken;
  if (entry.email) out.email = entry.email;
  return out;
}

/** Every stored credential, keyed by registry (the X-Registry-Config of a build). */
export async function resolveAllAuths(config?: DockerConfigFile): Promise<Record<string, AuthConfig>> {
  const cfg = config ?? (await readDockerConfig());
  const out: Record<string, AuthConfig> = {};
  const keys = new Set([...Object.keys(cfg.auths ?? {}), ...Object.keys(cfg.credHelpers ?? {})]);
  for (const key of keys) {
    const auth = await resolveAuth(key, cfg);
    if (auth) out[key] = auth;
  }
  return out;
}

/** Runs `docker-credential-<helper> get` with the server URL on stdin (docker's credential-helper protocol). */
export async function credentialHelperGet(helper: string, serverUrl: string): Promise<AuthConfig | undefined> {
  const result = await runHelper(helper, 'get', serverUrl);
  if (result.code !== 0) {
    if (/credentials not found/i.test(result.stdout + result.stderr)) return undefined;
    throw new ClientError('CREDENTIAL_HELPER', 'unavailable', `docker-credential-${helper} get ${serverUrl} failed: ${(result.stderr || result.stdout).trim()}`);
  }
  const parsed = JSON.parse(result.stdout) as { Username?: string; Secret?: string; ServerURL?: string };
  if (parsed.Username === '<token>') return { identitytoken: parsed.Secret, serveraddress: serverUrl };
  return { username: parsed.Username, password: parsed.Secret, serveraddress: serverUrl };
}

/** Stores credentials with a helper (`store`) or erases them (`erase`). */
export async function credentialHelperStore(helper: string, serverUrl: string, username: string, secret: string): Promise<void> {
  const result = await runHelper(helper, 'store', JSON.stringify({ ServerURL: serverUrl, Username: username, Secret: secret }));
  if (result.code !== 0) throw new ClientError('CREDENTIAL_HELPER', 'unavailable', `docker-credential-${helper} store failed: ${result.stderr.trim()}`);
}

export async function credentialHelperErase(helper: string, serverUrl: string): Promise<void> {
  const result = await runHelper(helper, 'erase', serverUrl);
  if (result.code !== 0 && !/not found/i.test(result.stderr + result.stdout)) {
    throw new ClientError('CREDENTIAL_HELPER', 'unavailable', `docker-credential-${helper} erase failed: ${result.stderr.trim()}`);
  }
}

async function runHelper(helper: string, action: string, input: string): Promise<{ code: number; stdout: string; stderr: string }> {
  // Loaded here, not at the top: most commands never run a helper, and CLI start-up pays for every import.
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const child = spawn(`docker-credential-${helper}`, [action], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (error) =>
      reject(new ClientError('CREDENTIAL_HELPER', 'unavailable', `credential helper docker-credential-${helper} could not be run (is it on PATH?)`, { cause: error })),
    );
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** Saves a login the way `docker login` does: with the helper when one is configured, else inline base64. */
export async function saveLogin(registry: string, username: string, password: string, path = dockerConfigPath()): Promise<string> {
  const cfg = await readDockerConfig(path);
  const key = authKeyFor(registry);
  const helper = cfg.credHelpers?.[key] ?? cfg.credsStore;
  if (helper) {
    await credentialHelperStore(helper, key, username, password);
    cfg.auths = { ...cfg.auths, [key]: {} };
  } else {
    cfg.auths = { ...cfg.auths, [key]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } };
  }
  await writeDockerConfig(cfg, path);
  return key;
}

/** Removes a login; returns false when there was none. */
export async function removeLogin(registry: string, path = dockerConfigPath()): Promise<boolean> {
  const cfg = await readDockerConfig(path);
  const key = authKeyFor(registry);
  const helper = cfg.credHelpers?.[key] ?? cfg.credsStore;
  const had = cfg.auths?.[key] !== undefined;
  if (helper) await credentialHelperErase(helper, key);
  if (cfg.auths) delete cfg.auths[key];
  await writeDockerConfig(cfg, path);
  return had || helper !== undefined;
}

/**
 * X-Registry-Auth / X-Registry-Config encoding: base64url (RFC 4648 §5) of the JSON, with padding,
 * as Go's base64.URLEncoding writes it. `{}` → `e30=`.
 */
export function encodeRegistryAuth(value: AuthConfig | Record<string, AuthConfig> | undefined): string {
  const b64 = Buffer.from(JSON.stringify(value ?? {})).toString('base64');
  return b64.replace(/\+/g, '-').replace(/\//g, '_');
}
