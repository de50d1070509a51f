import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { RegistryError } from '../errors.js';

/** What a registry host's credentials can be: a user and password, or tokens. */
export interface Credential {
  username?: string;
  password?: string;
  /** A refresh token for the OAuth2 token endpoint (`docker login` with an identity provider). */
  identityToken?: string;
  /** A bearer token sent as is, with no token exchange. */
  registryToken?: string;
}

/** Where the client finds credentials; asked with the registry host (`ghcr.io`, `localhost:5000`). */
export interface CredentialStore {
  get(host: string): Promise<Credential | undefined>;
}

const DOCKER_HUB_KEYS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);
/** The key Docker files Docker Hub's credentials under. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

/** Host part of a config key: `https://index.docker.io/v1/` → `index.docker.io`. */
export function normaliseAuthKey(key: string): string {
  let host = key.replace(/^[a-z]+:\/\//i, '');
  const slash = host.indexOf('/');
  if (slash >= 0) host = host.slice(0, slash);
  host = host.toLowerCase();
  return DOCKER_HUB_KEYS.has(host) ? 'docker.io' : host;
}

/** Fixed credentials by host, for programs that hold them already (and for tests). */
export class StaticCredentials implements CredentialStore {
  private readonly byHost = new Map<string, Credential>();
  constructor(entries: Record<string, Credential> = {}) {
    for (const [host, cred] of Object.entries(entries)) this.byHost.set(normaliseAuthKey(host), cred);
  }
  async get(host: string): Promise<Credential | undefined> {
    return this.byHost.get(normaliseAuthKey(host));
  }
}

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string; registrytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

/**
 * Reads Docker's `config.json` (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`) the
 * way the docker CLI does: a per-host `credHelpers` entry wins, then the global `credsStore`,
 * then inline `auths`. Helpers are `docker-credential-<name>` programs speaking the credential
 * helper protocol (`get` with the server URL on stdin, JSON `{Username, Secret}` on stdout;
 * Username `<token>` means Secret is an identity token). The file is read on every lookup, so a
 * `docker login` in between is seen.
 */
export class DockerConfigCredentials implements CredentialStore {
  readonly file: string;

  constructor(file?: string) {
    this.file = file ?? join(process.env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
  }

  private async load(): Promise<DockerConfigFile> {
    try {
      return JSON.parse(await readFile(this.file, 'utf8')) as DockerConfigFile;
    } catch (error) {
      if ((error as { code?: string }).code === 'ENOENT') return {};
      throw new RegistryError('CREDENTIALS_INVALID', `cannot read docker config ${this.file}`, {
        category: 'invalid',
        cause: error,
      });
    }
  }

  async get(host: string): Promise<Credential | undefined> {
    const wanted = normaliseAuthKey(host);
    const config = await this.load();
    const serverUrl = wanted === 'docker.io' ? DOCKER_HUB_AUTH_KEY : wanted;
    for (const [key, helper] of Object.entries(config.credHelpers ?? {})) {
      if (normaliseAuthKey(key) === wanted) return runCredentialHelper(helper, key.includes('://') ? key : serverUrl);
    }
    const inline = Object.entries(config.auths ?? {}).find(([key]) => normaliseAuthKey(key) === wanted);
    if (config.credsStore) {
      const fromStore = await runCredentialHelper(config.credsStore, inline?.[0] ?? serverUrl);
      if (fromStore) return fromStore;
    }
    if (!inline) return undefined;
    const entry = inline[1];
    const cred: Credential = {};
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) {
        cred.username = decoded.slice(0, colon);
        cred.password = decoded.slice(colon + 1);
      }
    }
    if (entry.username) cred.username = entry.username;
    if (entry.password) cred.password = entry.password;
    if (entry.identitytoken) cred.identityToken = entry.identitytoken;
    if (entry.registrytoken) cred.registryToken = entry.registrytoken;
    return Object.keys(cred).length > 0 ? cred : undefined;
  }
}

/**
 * Runs `docker-credential-<helper> get`. "credentials not found" is `undefined`; a missing
 * helper binary or any other failure throws (the user configured it, so silence would mislead).
 */
export function runCredentialHelper(helper: string, serverUrl: string): Promise<Credential | undefined> {
  const program = `docker-credential-${helper}`;
  return new Promise((resolve, reject) => {
    const child = spawn(program, ['get'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (error) =>
      reject(new RegistryError('CREDENTIALS_HELPER', `credential helper ${program} failed: ${error.message}`, { category: 'unavailable', cause: error })),
    );
    child.on('close', (code) => {
      if (code !== 0) {
        if (/credentials not found/i.test(out + err)) return resolve(undefined);
        return reject(
          new RegistryError('CREDENTIALS_HELPER', `credential helper ${program} get ${serverUrl} exited ${code}: ${(out + err).trim()}`, {
            category: 'unavailable',
          }),
        );
      }
      try {
        const parsed = JSON.parse(out) as { Username?: string; Secret?: string };
        if (!parsed.Secret) return resolve(undefined);
        if (parsed.Username === '<token>') return resolve({ identityToken: parsed.Secret });
        resolve({ username: parsed.Username ?? '', password: parsed.Secret });
      } catch (error) {
        reject(new RegistryError('CREDENTIALS_HELPER', `credential helper ${program} printed invalid JSON`, { category: 'invalid', cause: error }));
      }
    });
    child.stdin.end(serverUrl);
  });
}
