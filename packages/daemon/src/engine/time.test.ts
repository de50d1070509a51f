import { describe, expect, it } from 'vitest';
import { humanDuration, parseTimestamp, rfc3339Nano } from './time.js';

describe('timestamps', () => {
  it("formats like Go's RFC3339Nano (trailing zeros trimmed)", () => {
    expect(rfc3339Nano(1_700_000_000_123_456_789n)).toBe('2023-11-14T22:13:20.123456789Z');
    expect(rfc3339Nano(1_700_000_000_120_000_000n)).toBe('2023-11-14T22:13:20.12Z');
    expect(rfc3339Nano(1_700_000_000_000_000_000n)).toBe('2023-11-14T22:13:20Z');
  });

  it('parses unix seconds with fractions, RFC 3339 and durations', () => {
    expect(parseTimestamp('1700000000')).toBe(1_700_000_000_000_000_000n);
    expect(parseTimestamp('1700000000.5')).toBe(1_700_000_000_500_000_000n);
    expect(parseTimestamp('2023-11-14T22:13:20Z')).toBe(1_700_000_000_000_000_000n);
    expect(parseTimestamp('10s', 1_700_000_010_000)).toBe(1_700_000_000_000_000_000n);
    expect(parseTimestamp('nonsense')).toBeUndefined();
  });

  it("says durations like Docker's ps", () => {
    expect(humanDuration(500)).toBe('Less than a second');
    expect(humanDuration(1000)).toBe('1 second');
    expect(humanDuration(45_000)).toBe('45 seconds');
    expect(humanDuration(60_000)).toBe('About a minute');
    expect(humanDuration(5 * 60_000)).toBe('5 minutes');
    expect(humanDuration(3600_000)).toBe('About an hour');
  });
});
