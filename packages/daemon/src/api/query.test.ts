import { describe, expect, it } from 'vitest';
import { boolValue, intValue, parseFilters } from './query.js';

describe('boolValue (moby httputils.BoolValue)', () => {
  it.each([
    ['1', true],
    ['true', true],
    ['True', true],
    ['yes', true],
    ['anything', true],
    ['', false],
    ['0', false],
    ['no', false],
    ['false', false],
    ['FALSE', false],
    ['none', false],
  ])('%j is %s', (value, expected) => {
    expect(boolValue(new URLSearchParams({ v: value }), 'v')).toBe(expected);
  });

  it('is false when absent', () => {
    expect(boolValue(new URLSearchParams(), 'v')).toBe(false);
  });
});

describe('intValue', () => {
  it('parses integers and rejects the rest with a 400', () => {
    expect(intValue(new URLSearchParams({ t: '5' }), 't', 0)).toBe(5);
    expect(intValue(new URLSearchParams(), 't', 10)).toBe(10);
    expect(() => intValue(new URLSearchParams({ t: 'x' }), 't', 0)).toThrow(/invalid value for t: x/);
  });
});

describe('parseFilters', () => {
  it('reads the map form the CLI sends', () => {
    const f = parseFilters('{"label":{"a=b":true,"c":true},"status":{"running":true}}');
    expect(f.get('label')).toEqual(['a=b', 'c']);
    expect(f.get('status')).toEqual(['running']);
  });

  it('reads the array form dockerode and testcontainers send', () => {
    const f = parseFilters('{"label":["org.testcontainers=true"],"status":["running","exited"]}');
    expect(f.get('label')).toEqual(['org.testcontainers=true']);
    expect(f.get('status')).toEqual(['running', 'exited']);
  });

  it('treats absent and empty as no filters', () => {
    expect(parseFilters(null).keys()).toEqual([]);
    expect(parseFilters('').keys()).toEqual([]);
    expect(parseFilters('{}').keys()).toEqual([]);
  });

  it('rejects malformed JSON and wrong shapes with a 400', () => {
    expect(() => parseFilters('{')).toThrow(/invalid filters/);
    expect(() => parseFilters('[1]')).toThrow(/invalid filters/);
    expect(() => parseFilters('{"label":"x"}')).toThrow(/invalid filters/);
    expect(() => parseFilters('{"label":[1]}')).toThrow(/invalid filters/);
  });

  it('validates keys like moby', () => {
    expect(() => parseFilters('{"bogus":["x"]}').validate(['label'])).toThrow("invalid filter 'bogus'");
  });

  it('matches labels by key and key=value, all of them', () => {
    const f = parseFilters('{"label":["a","b=2"]}');
    expect(f.matchLabels('label', { a: 'x', b: '2' })).toBe(true);
    expect(f.matchLabels('label', { a: 'x', b: '3' })).toBe(false);
    expect(f.matchLabels('label', { b: '2' })).toBe(false);
    expect(parseFilters(null).matchLabels('label', {})).toBe(true);
  });

  it('matches values with OR semantics, absent keys match everything', () => {
    const f = parseFilters('{"status":["running","paused"]}');
    expect(f.match('status', (v) => v === 'paused')).toBe(true);
    expect(f.match('status', (v) => v === 'exited')).toBe(false);
    expect(f.match('name', () => false)).toBe(true);
  });
});
