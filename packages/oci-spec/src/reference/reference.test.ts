import { describe, expect, it } from 'vitest';
import {
  InvalidReferenceError,
  familiarName,
  familiarString,
  formatReference,
  isValidDomain,
  isValidTag,
  parseReference,
  referenceName,
  registryHost,
  trimReference,
  tryParseReference,
  withDigest,
  withTag,
} from './reference.js';

// Expected results were worked out by hand from distribution/reference v0.6 (normalize.go:
// ParseNormalizedNamed + splitDockerDomain, reference.go: Parse, regexp.go) and go-digest,
// followed by TagNameOnly (which `docker pull` applies).
const H = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'; // 64 hex
const D = `sha256:${H}`;
const D512 = `sha512:${'ab'.repeat(64)}`;

type Expected = string | { error: string };
const err = (reason: string): Expected => ({ error: reason });
const FORMAT = err('invalid reference format');

const table: [input: string, expected: Expected][] = [
  // Docker Hub normalisation
  ['busybox', 'docker.io/library/busybox:latest'],
  ['busybox:1.36', 'docker.io/library/busybox:1.36'],
  ['library/busybox', 'docker.io/library/busybox:latest'],
  ['docker.io/busybox', 'docker.io/library/busybox:latest'],
  ['docker.io/library/busybox:latest', 'docker.io/library/busybox:latest'],
  ['index.docker.io/busybox', 'docker.io/library/busybox:latest'],
  ['index.docker.io/library/busybox:1', 'docker.io/library/busybox:1'],
  ['index.docker.io/foo/bar', 'docker.io/foo/bar:latest'],
  ['foo/bar', 'docker.io/foo/bar:latest'],
  ['foo/bar/baz', 'docker.io/foo/bar/baz:latest'],
  ['docker.io/library/foo/bar', 'docker.io/library/foo/bar:latest'],
  ['Docker.io/foo', 'Docker.io/foo:latest'],
  ['ubuntu:22.04', 'docker.io/library/ubuntu:22.04'],
  // localhost, hosts and ports
  ['localhost/foo', 'localhost/foo:latest'],
  ['localhost:5000/a/b:tag', 'localhost:5000/a/b:tag'],
  ['localhost:5000', 'docker.io/library/localhost:5000'],
  ['localhost', 'docker.io/library/localhost:latest'],
  ['LOCALHOST/foo', 'LOCALHOST/foo:latest'],
  ['Foo/bar', 'Foo/bar:latest'],
  ['example.com/foo', 'example.com/foo:latest'],
  ['example.com:8080/foo/bar:v1', 'example.com:8080/foo/bar:v1'],
  ['sub.example.com/a/b/c:1', 'sub.example.com/a/b/c:1'],
  ['xn--bcher-kva.example/foo', 'xn--bcher-kva.example/foo:latest'],
  ['127.0.0.1:5000/busybox', '127.0.0.1:5000/busybox:latest'],
  ['1.2.3.4:65536/foo', '1.2.3.4:65536/foo:latest'],
  ['foo:5000/bar', 'foo:5000/bar:latest'],
  ['foo.com/bar.baz/qux', 'foo.com/bar.baz/qux:latest'],
  ['a_b.com/foo', 'a_b.com/foo:latest'],
  // IPv6 hosts
  ['[::1]:5000/x', '[::1]:5000/x:latest'],
  ['[::1]/x', '[::1]/x:latest'],
  ['[2001:db8::1]:5000/ns/app:1.0', '[2001:db8::1]:5000/ns/app:1.0'],
  ['[fe80::1%eth0]:5000/x', FORMAT],
  ['[::1]', FORMAT],
  ['[::1]:5000', FORMAT],
  ['::1/x', FORMAT],
  // digests
  [`busybox@${D}`, `docker.io/library/busybox@${D}`],
  [`busybox:1.36@${D}`, `docker.io/library/busybox:1.36@${D}`],
  [`busybox:latest@${D}`, `docker.io/library/busybox:latest@${D}`],
  [`localhost:5000/a@${D}`, `localhost:5000/a@${D}`],
  [`registry.example.com/app@${D}`, `registry.example.com/app@${D}`],
  [`example.com/foo:Tag@${D}`, `example.com/foo:Tag@${D}`],
  [`busybox@${D512}`, `docker.io/library/busybox@${D512}`],
  [D, `docker.io/library/sha256:${H}`],
  ['busybox@sha256:abc', FORMAT],
  [`busybox@sha256:${'a'.repeat(32)}`, err('invalid checksum digest length')],
  [`busybox@md5:${'a'.repeat(32)}`, err('unsupported digest algorithm')],
  [`busybox@sha256:${'A'.repeat(64)}`, err('invalid checksum digest format')],
  // Docker accepts sha384; berth's content store does not, so it is refused here (deliberate).
  [`busybox@sha384:${'a'.repeat(96)}`, err('unsupported digest algorithm')],
  [`foo@bar@${D}`, FORMAT],
  // identifiers
  [H, err(`invalid repository name (${H}), cannot specify 64-byte hexadecimal strings`)],
  [H.slice(0, 63), `docker.io/library/${H.slice(0, 63)}:latest`],
  // separators in path components
  ['foo_bar', 'docker.io/library/foo_bar:latest'],
  ['foo__bar', 'docker.io/library/foo__bar:latest'],
  ['foo___bar', FORMAT],
  ['foo-bar', 'docker.io/library/foo-bar:latest'],
  ['foo---bar', 'docker.io/library/foo---bar:latest'],
  ['foo.bar', 'docker.io/library/foo.bar:latest'],
  ['foo..bar', FORMAT],
  ['-foo', FORMAT],
  ['foo-', FORMAT],
  ['foo bar', FORMAT],
  ['foo/', FORMAT],
  ['/foo', FORMAT],
  ['foo//bar', FORMAT],
  ['', FORMAT],
  // uppercase
  ['FOO', err('invalid reference format: repository name (library/FOO) must be lowercase')],
  ['UPPER:tag', err('invalid reference format: repository name (library/UPPER) must be lowercase')],
  ['foo/Bar', err('invalid reference format: repository name (foo/Bar) must be lowercase')],
  ['example.com/Foo', err('invalid reference format: repository name (Foo) must be lowercase')],
  ['localhost:5000/Foo', err('invalid reference format: repository name (Foo) must be lowercase')],
  ['docker.io/Library/busybox', err('invalid reference format: repository name (Library/busybox) must be lowercase')],
  // tags
  ['busybox:Latest', 'docker.io/library/busybox:Latest'],
  ['busybox:TAG_1.2-x', 'docker.io/library/busybox:TAG_1.2-x'],
  ['busybox:_x', 'docker.io/library/busybox:_x'],
  ['busybox:.tag', FORMAT],
  ['busybox:-tag', FORMAT],
  ['busybox:', FORMAT],
  ['foo/bar:tag:tag', FORMAT],
  [`busybox:${'t'.repeat(128)}`, `docker.io/library/busybox:${'t'.repeat(128)}`],
  [`busybox:${'t'.repeat(129)}`, FORMAT],
  // hosts that are not hosts
  ['example.com:port/foo', FORMAT],
  ['example.com:/foo', FORMAT],
  ['-example.com/foo', FORMAT],
  ['example-.com/foo', FORMAT],
  // length: the path (without domain, with library/) may have 255 characters
  [`a/${'b'.repeat(253)}`, `docker.io/a/${'b'.repeat(253)}:latest`],
  [`a/${'b'.repeat(254)}`, err('repository name must not be more than 255 characters')],
  ['c'.repeat(247), `docker.io/library/${'c'.repeat(247)}:latest`],
  ['c'.repeat(248), err('repository name must not be more than 255 characters')],
  [`example.com/${'d'.repeat(255)}`, `example.com/${'d'.repeat(255)}:latest`],
  [`example.com/${'d'.repeat(256)}`, err('repository name must not be more than 255 characters')],
];

describe('parseReference table', () => {
  it('has at least 60 cases', () => {
    expect(table.length).toBeGreaterThanOrEqual(60);
  });

  it.each(table)('%s', (input, expected) => {
    if (typeof expected === 'string') {
      expect(formatReference(parseReference(input))).toBe(expected);
    } else {
      let thrown: unknown;
      try {
        parseReference(input);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(InvalidReferenceError);
      const e = thrown as InvalidReferenceError;
      expect(e.reason).toBe(expected.error);
      expect(e.code).toBe('INVALID_REFERENCE');
      expect(e.category).toBe('invalid');
      expect(e.input).toBe(input);
      expect(e.message).toContain(JSON.stringify(input));
    }
  });

  it('normalised forms parse to themselves', () => {
    for (const [, expected] of table) {
      if (typeof expected !== 'string') continue;
      expect(formatReference(parseReference(expected))).toBe(expected);
    }
  });
});

describe('reference parts', () => {
  it('splits domain, path, tag and digest', () => {
    expect(parseReference('busybox')).toEqual({ domain: 'docker.io', path: 'library/busybox', tag: 'latest' });
    expect(parseReference(`[::1]:5000/x/y:1@${D}`)).toEqual({ domain: '[::1]:5000', path: 'x/y', tag: '1', digest: D });
    expect(parseReference(`busybox@${D}`)).toEqual({ domain: 'docker.io', path: 'library/busybox', digest: D });
    expect(parseReference('a_b.com/foo')).toEqual({ domain: '', path: 'a_b.com/foo', tag: 'latest' });
  });

  it('defaultTag: false leaves a name-only reference', () => {
    expect(parseReference('busybox', { defaultTag: false })).toEqual({ domain: 'docker.io', path: 'library/busybox' });
    expect(formatReference(parseReference('localhost:5000/a', { defaultTag: false }))).toBe('localhost:5000/a');
  });

  it('tryParseReference returns undefined on invalid input', () => {
    expect(tryParseReference('FOO')).toBeUndefined();
    expect(tryParseReference('foo')?.path).toBe('library/foo');
  });
});

describe('familiar names', () => {
  const familiar: [string, string, string][] = [
    ['docker.io/library/busybox:latest', 'busybox', 'busybox:latest'],
    ['busybox', 'busybox', 'busybox:latest'],
    [`busybox@${D}`, 'busybox', `busybox@${D}`],
    [`busybox:1@${D}`, 'busybox', `busybox:1@${D}`],
    ['docker.io/foo/bar:1', 'foo/bar', 'foo/bar:1'],
    ['docker.io/library/foo/bar', 'library/foo/bar', 'library/foo/bar:latest'],
    ['localhost/foo', 'localhost/foo', 'localhost/foo:latest'],
    ['localhost:5000/a/b:tag', 'localhost:5000/a/b', 'localhost:5000/a/b:tag'],
    ['[::1]:5000/x', '[::1]:5000/x', '[::1]:5000/x:latest'],
    ['index.docker.io/library/redis:7', 'redis', 'redis:7'],
  ];
  it.each(familiar)('%s → %s / %s', (input, name, str) => {
    const ref = parseReference(input);
    expect(familiarName(ref)).toBe(name);
    expect(familiarString(ref)).toBe(str);
  });

  it('referenceName drops tag and digest', () => {
    expect(referenceName(parseReference(`busybox:1@${D}`))).toBe('docker.io/library/busybox');
    expect(trimReference(parseReference(`busybox:1@${D}`))).toEqual({ domain: 'docker.io', path: 'library/busybox' });
  });
});

describe('registryHost', () => {
  it('maps Docker Hub to its API host and leaves others alone', () => {
    expect(registryHost('docker.io')).toBe('registry-1.docker.io');
    expect(registryHost('index.docker.io')).toBe('registry-1.docker.io');
    expect(registryHost('localhost:5000')).toBe('localhost:5000');
    expect(registryHost('[::1]:5000')).toBe('[::1]:5000');
  });
});

describe('withTag / withDigest / validators', () => {
  it('adds a tag or digest, validating it', () => {
    const ref = parseReference('busybox', { defaultTag: false });
    expect(formatReference(withTag(ref, 'v1'))).toBe('docker.io/library/busybox:v1');
    expect(formatReference(withDigest(withTag(ref, 'v1'), D))).toBe(`docker.io/library/busybox:v1@${D}`);
    expect(() => withTag(ref, '-bad')).toThrow(InvalidReferenceError);
    expect(() => withTag(ref, '-bad')).toThrow('invalid tag format');
    expect(() => withDigest(ref, 'sha256:abc')).toThrow('invalid checksum digest length');
  });

  it('isValidTag and isValidDomain', () => {
    expect(isValidTag('latest')).toBe(true);
    expect(isValidTag('t'.repeat(128))).toBe(true);
    expect(isValidTag('t'.repeat(129))).toBe(false);
    expect(isValidTag('.x')).toBe(false);
    expect(isValidDomain('localhost:5000')).toBe(true);
    expect(isValidDomain('[::1]:5000')).toBe(true);
    expect(isValidDomain('bad_host')).toBe(false);
  });
});
