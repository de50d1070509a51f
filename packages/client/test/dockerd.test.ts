import { afterAll, beforeAll, describe } from 'vitest';
import { engineSuite } from './engine-suite.js';
import { dockerdAvailable, startDockerd } from './support/engines.js';
import type { Engine } from './support/engines.js';

if (!dockerdAvailable) {
  console.warn('skipping the @berth/client suite against dockerd: needs root and Debian docker.io (dockerd); CI installs it');
}

describe.skipIf(!dockerdAvailable)('@berth/client against dockerd', () => {
  let engine: Engine | undefined;
  beforeAll(async () => {
    engine = await startDockerd();
  }, 90_000);
  afterAll(async () => {
    await engine?.stop();
  });
  engineSuite(() => engine!);
});
