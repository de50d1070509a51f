import { describe, expect, it } from 'vitest';
import { ProgressRenderer, progressBar } from './progress.js';

function capture(): { out: { write(t: string): void }; text: () => string } {
  let text = '';
  return { out: { write: (t: string) => void (text += t) }, text: () => text };
}

const pull = [
  { status: 'Pulling from library/busybox', id: 'latest' },
  { status: 'Pulling fs layer', id: 'aaa' },
  { status: 'Pulling fs layer', id: 'bbb' },
  { status: 'Downloading', id: 'aaa', progressDetail: { current: 500, total: 1000 } },
  { status: 'Download complete', id: 'aaa' },
  { status: 'Pull complete', id: 'aaa' },
  { status: 'Pull complete', id: 'bbb' },
  { status: 'Digest: sha256:abc' },
  { status: 'Status: Downloaded newer image for busybox:latest' },
];

describe('progress rendering', () => {
  it('prints plain status lines without bars when piped', () => {
    const c = capture();
    const r = new ProgressRenderer(c.out, false);
    for (const m of pull) r.write(m);
    expect(c.text()).toBe(
      'latest: Pulling from library/busybox\naaa: Pulling fs layer\nbbb: Pulling fs layer\naaa: Download complete\naaa: Pull complete\nbbb: Pull complete\nDigest: sha256:abc\nStatus: Downloaded newer image for busybox:latest\n',
    );
  });

  it('rewrites each layer line in place on a terminal', () => {
    const c = capture();
    const r = new ProgressRenderer(c.out, true, 100);
    for (const m of pull.slice(0, 4)) r.write(m);
    // The update of layer aaa (line 1 of 3) moves up 2 lines, clears, writes, comes back down.
    expect(c.text()).toContain('\x1b[2A\r\x1b[2Kaaa: Downloading [');
    expect(c.text()).toContain('\r\x1b[2B');
    expect(c.text()).toContain('500B/1kB');
  });

  it('passes build stream text through', () => {
    const c = capture();
    new ProgressRenderer(c.out, false).write({ stream: 'Step 1/2 : FROM busybox\n' });
    expect(c.text()).toBe('Step 1/2 : FROM busybox\n');
  });

  it('draws bars', () => {
    expect(progressBar(50, 100, 10)).toBe('[=====>    ]      50B/100B');
    expect(progressBar(100, 100, 4)).toBe('[====]     100B/100B');
  });
});
