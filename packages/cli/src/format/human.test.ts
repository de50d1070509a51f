import { describe, expect, it } from 'vitest';
import { binarySize, goTime, humanDuration, humanSize, parseBytes, shortId, timeAgo } from './human.js';

describe('human units', () => {
  it('prints sizes like go-units', () => {
    expect(humanSize(0)).toBe('0B');
    expect(humanSize(999)).toBe('999B');
    expect(humanSize(1980000)).toBe('1.98MB');
    expect(humanSize(4_261_000)).toBe('4.26MB');
    expect(humanSize(1_000_000_000)).toBe('1GB');
    expect(binarySize(479232)).toBe('468KiB');
    expect(binarySize(25_275_383_808)).toBe('23.54GiB');
  });

  it('prints durations like docker ps', () => {
    expect(humanDuration(300)).toBe('Less than a second');
    expect(humanDuration(1000)).toBe('1 second');
    expect(humanDuration(45_000)).toBe('45 seconds');
    expect(humanDuration(61_000)).toBe('About a minute');
    expect(humanDuration(5 * 60_000)).toBe('5 minutes');
    expect(humanDuration(60 * 60_000)).toBe('About an hour');
    expect(humanDuration(2 * 3_600_000)).toBe('2 hours');
    expect(humanDuration(3 * 86_400_000)).toBe('3 days');
    expect(humanDuration(20 * 86_400_000)).toBe('2 weeks');
    expect(timeAgo(1000, 1000 * 1000 + 7200_000)).toBe('2 hours ago');
  });

  it('formats times, parses sizes and shortens IDs', () => {
    expect(goTime(0)).toBe('1970-01-01 00:00:00 +0000 UTC');
    expect(parseBytes('512m')).toBe(512 * 1024 * 1024);
    expect(parseBytes('1g')).toBe(1024 ** 3);
    expect(parseBytes('100')).toBe(100);
    expect(() => parseBytes('lots')).toThrow(/invalid size/);
    expect(shortId(`sha256:${'a'.repeat(64)}`)).toBe('aaaaaaaaaaaa');
  });
});
