import { afterAll, beforeAll, describe } from 'vitest';
import { BerthClient } from '@berth/client';
import { dockerdAvailable, importBusybox, startDockerd, uniqueName } from '../../client/test/support/engines.js';
import type { Engine } from '../../client/test/support/engines.js';
import { scenarioSuite } from './scenario-suite.js';

const dockerCliAvailable = (await import('node:child_process')).spawnSync('sh', ['-c', 'command -v docker']).status === 0;
if (!dockerdAvailable || !dockerCliAvailable) {
  console.warn('skipping the berth-vs-docker scenario against dockerd: needs root, dockerd (Debian docker.io) and the docker CLI');
}

describe.skipIf(!dockerdAvailable || !dockerCliAvailable)('berth and the docker CLI give the same results against dockerd', () => {
  let engine: Engine | undefined;
  const image = `${uniqueName('berth-scenario-busybox')}:1`;
  beforeAll(async () => {
    engine = await startDockerd();
    const client = new BerthClient({ host: engine.host });
    await importBusybox(client, image);
    client.close();
  }, 120_000);
  afterAll(async () => {
    await engine?.stop();
  });
  scenarioSuite(() => engine!.host, () => image);
});
