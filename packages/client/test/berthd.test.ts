import { afterAll, beforeAll } from 'vitest';
import { describePrivileged } from '../../../test/support/privileged.js';
import { engineSuite } from './engine-suite.js';
import { startBerthd } from './support/engines.js';
import type { Engine } from './support/engines.js';

describePrivileged('@berth/client against berthd', () => {
  let engine: Engine | undefined;
  beforeAll(async () => {
    engine = await startBerthd();
  }, 90_000);
  afterAll(async () => {
    await engine?.stop();
  });
  engineSuite(() => engine!, new Set());
});
