/** Go's RFC 3339 with nanoseconds and trailing zeros trimmed (time.RFC3339Nano). */
export function rfc3339Nano(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const base = new Date(Number(ms)).toISOString().slice(0, 19);
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return frac === '' ? `${base}Z` : `${base}.${frac}Z`;
}

/**
 * Docker's timestamps in queries (`since`, `until`): unix seconds with an optional fraction
 * (`1700000000.5`), RFC 3339, or a Go duration relative to now (`10m`). Returns ns since the epoch.
 */
export function parseTimestamp(value: string, now = Date.now()): bigint | undefined {
  const v = value.trim();
  if (v === '') return undefined;
  const unix = /^(\d+)(?:\.(\d{1,9}))?$/.exec(v);
  if (unix) return BigInt(unix[1]!) * 1_000_000_000n + BigInt((unix[2] ?? '').padEnd(9, '0') || '0');
  const duration = /^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)$/.exec(v);
  if (duration) {
    const factor = { ns: 1e-6, us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 }[duration[2] as 'ns'];
    return BigInt(Math.round(now - Number(duration[1]) * factor)) * 1_000_000n;
  }
  const parsed = Date.parse(v);
  if (!Number.isNaN(parsed)) return BigInt(parsed) * 1_000_000n;
  return undefined;
}

/** Docker's "Up 5 minutes" / "Exited (0) 3 seconds ago" human durations (go-units HumanDuration). */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.floor(ms / 3600_000 + 0.5);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(hours / 24 / 365)} years`;
}
