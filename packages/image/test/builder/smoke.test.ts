import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged } from '../../../../test/support/privileged.js';
import { makeBuilder } from './fixtures.js';
import type { BuilderHarness } from './fixtures.js';

describePrivileged('builder smoke', () => {
  let h: BuilderHarness;
  let ctx: string;
  beforeAll(async () => {
    h = await makeBuilder();
    ctx = await mkdtemp(join(tmpdir(), 'berth-ctx-'));
    await writeFile(join(ctx, 'file'), 'hello file\n');
  });
  afterAll(async () => {
    await h?.cleanup();
    if (ctx) await rm(ctx, { recursive: true, force: true });
  });

  it('builds RUN and COPY over busybox', async () => {
    const events: string[] = [];
    const result = await h.builder.build({
      context: ctx,
      dockerfileText: 'FROM busybox\nRUN echo hi > /a && echo out\nCOPY file /b\n',
      onEvent: (e) => {
        events.push(JSON.stringify(e));
        if (e.type === "step-output") console.log(e.line);
      },
    });
    expect(result.manifest.layers.length).toBe(3);
    expect(h.executor.stats.runs).toBe(1);
    expect(events.some((e) => e.includes('"line":"out"'))).toBe(true);
  });
});
