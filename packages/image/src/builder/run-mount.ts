import { InvalidBuildError } from './errors.js';

/** One `RUN --mount=...` after variable expansion. */
export interface RunMount {
  type: 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
  /** Absolute (or relative to WORKDIR) path in the container; secrets default to /run/secrets/<id>. */
  target?: string;
  source?: string;
  /** Stage name/index or image for bind and cache mounts. */
  from?: string;
  readonly: boolean;
  id?: string;
  sharing: 'shared' | 'private' | 'locked';
  mode?: number;
  uid?: number;
  gid?: number;
  /** tmpfs size in bytes. */
  size?: number;
  required: boolean;
  /** Secret exposed as this environment variable instead of a file. */
  env?: string;
}

function splitCsv(value: string): string[] {
  const fields: string[] = [];
  let current = '';
  let quote = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i] as string;
    if (ch === '"') {
      if (quote && value[i + 1] === '"') {
        current += '"';
        i++;
      } else quote = !quote;
    } else if (ch === ',' && !quote) {
      fields.push(current);
      current = '';
    } else current += ch;
  }
  if (quote) throw new InvalidBuildError(`invalid --mount value ${value}: unterminated quote`);
  fields.push(current);
  return fields.map((f) => f.trim()).filter((f) => f.length > 0);
}

function parseBool(key: string, value: string | undefined): boolean {
  if (value === undefined || value === '' || value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new InvalidBuildError(`invalid value for ${key}: ${value}`);
}

function parseSize(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?$/i.exec(value.trim());
  if (!m) throw new InvalidBuildError(`invalid size: ${value}`);
  const unit = (m[2] ?? '').toLowerCase().replace(/i?b$/, '');
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[unit] ?? 1;
  return Math.floor(Number(m[1]) * mult);
}

/** Parses a `--mount` flag value (already expanded), following BuildKit's field names. */
export function parseRunMount(value: string): RunMount {
  const mount: RunMount = { type: 'bind', readonly: true, sharing: 'shared', required: false };
  let readonlySet = false;
  for (const field of splitCsv(value)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    const val = eq < 0 ? undefined : field.slice(eq + 1);
    switch (key) {
      case 'type':
        if (!['bind', 'cache', 'tmpfs', 'secret', 'ssh'].includes(val ?? '')) throw new InvalidBuildError(`unsupported mount type "${val}"`);
        mount.type = val as RunMount['type'];
        break;
      case 'target':
      case 'dst':
      case 'destination':
        mount.target = val;
        break;
      case 'source':
      case 'src':
        mount.source = val;
        break;
      case 'from':
        mount.from = val;
        break;
      case 'readonly':
      case 'ro':
        mount.readonly = parseBool(key, val);
        readonlySet = true;
        break;
      case 'readwrite':
      case 'rw':
        mount.readonly = !parseBool(key, val);
        readonlySet = true;
        break;
      case 'id':
        mount.id = val;
        break;
      case 'sharing':
        if (!['shared', 'private', 'locked'].includes(val ?? '')) throw new InvalidBuildError(`unsupported sharing value "${val}"`);
        mount.sharing = val as RunMount['sharing'];
        break;
      case 'mode': {
        if (!/^[0-7]+$/.test(val ?? '')) throw new InvalidBuildError(`invalid mode: ${val}`);
        mount.mode = Number.parseInt(val as string, 8);
        break;
      }
      case 'uid':
      case 'gid': {
        if (!/^\d+$/.test(val ?? '')) throw new InvalidBuildError(`invalid ${key}: ${val}`);
        mount[key] = Number(val);
        break;
      }
      case 'size':
        mount.size = parseSize(val ?? '');
        break;
      case 'required':
        mount.required = parseBool(key, val);
        break;
      case 'env':
        mount.env = val;
        break;
      default:
        throw new InvalidBuildError(`unexpected key '${key}' in '${field}'`);
    }
  }
  if (!readonlySet) mount.readonly = mount.type === 'bind' || mount.type === 'secret' || mount.type === 'ssh';
  if (mount.type === 'secret') {
    if (mount.id === undefined && mount.target === undefined && mount.env === undefined) {
      throw new InvalidBuildError('secret mount needs an id or a target');
    }
    mount.id ??= (mount.target ?? '').split('/').filter(Boolean).pop();
    if (mount.target === undefined && mount.env === undefined) mount.target = `/run/secrets/${mount.id}`;
  } else if (mount.target === undefined) {
    throw new InvalidBuildError(`mount of type ${mount.type} needs a target`);
  }
  if (mount.type === 'cache') mount.id ??= mount.target;
  return mount;
}
