/** Human units the way the docker CLI prints them (go-units). */

const DECIMAL = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
const BINARY = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

function formatPrecision(value: number, precision: number): string {
  // Go's %.Ng: N significant digits, trailing zeros dropped.
  return String(Number(value.toPrecision(precision)));
}

/** `4.26MB`, `0B` — decimal units, 3 significant digits (docker images / ps -s). */
export function humanSize(bytes: number, precision = 3): string {
  let value = bytes;
  let i = 0;
  while (value >= 1000 && i < DECIMAL.length - 1) {
    value /= 1000;
    i++;
  }
  return `${formatPrecision(value, precision)}${DECIMAL[i]}`;
}

/** `1.5MiB` — binary units (docker stats). */
export function binarySize(bytes: number, precision = 4): string {
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < BINARY.length - 1) {
    value /= 1024;
    i++;
  }
  return `${formatPrecision(value, precision)}${BINARY[i]}`;
}

/** go-units HumanDuration: `Less than a second`, `About a minute`, `5 minutes`, `2 hours`, `3 days`… */
export function humanDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.round(ms / 60_000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(hours / 24 / 365)} years`;
}

/** `2 hours ago` from unix seconds (or an RFC 3339 string). */
export function timeAgo(created: number | string, now = Date.now()): string {
  const ms = typeof created === 'number' ? created * 1000 : Date.parse(created);
  if (!Number.isFinite(ms) || ms <= 0) return 'N/A';
  return `${humanDuration(Math.max(0, now - ms))} ago`;
}

/** Go's time.Time String() form docker uses for CreatedAt: `2026-11-28 04:05:11 +0000 UTC`. */
export function goTime(created: number | string): string {
  const d = new Date(typeof created === 'number' ? created * 1000 : created);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000 UTC`;
}

/** Parses `512m`, `1g`, `100k`, `1024` into bytes (docker's RAMInBytes: binary multiples). */
export function parseBytes(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$/i.exec(text.trim());
  if (!m) throw new Error(`invalid size: '${text}'`);
  const mult: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
  return Math.round(Number(m[1]) * mult[m[2]!.toLowerCase()]!);
}

/** Shortens a 64-hex ID (with or without `sha256:`) to docker's 12 characters. */
export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}
