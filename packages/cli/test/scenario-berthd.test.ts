import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe } from 'vitest';
import { BerthClient } from '@berth/client';
import { isRoot } from '../../../test/support/privileged.js';
import { importBusybox, startBerthd, uniqueName } from '../../client/test/support/engines.js';
import type { Engine } from '../../client/test/support/engines.js';
import { scenarioSuite } from './scenario-suite.js';

const dockerCli = spawnSync('sh', ['-c', 'command -v docker']).status === 0;
if (!isRoot || !dockerCli) console.warn('skipping the berth-vs-docker scenario against berthd: needs root (real containers) and the docker CLI on PATH');

describe.skipIf(!isRoot || !dockerCli)('berth and the docker CLI give the same results against berthd', () => {
  let engine: Engine | undefined;
  const image = `${uniqueName('berth-scenario-busybox')}:1`;
  beforeAll(async () => {
    engine = await startBerthd();
    const client = new BerthClient({ host: engine.host });
    await importBusybox(client, image);
    client.close();
  }, 120_000);
  afterAll(async () => {
    await engine?.stop();
  });
  scenarioSuite(() => engine!.host, () => image, { expectCodes: false });
});
