import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const packages = ['oci-spec', 'registry', 'image', 'runtime', 'daemon', 'client', 'cli'];

// Tests import sibling packages from source, so a test run never depends on a stale build.
const alias = Object.fromEntries(
  packages.map((name) => [
    `@berth/${name}`,
    fileURLToPath(new URL(`./packages/${name}/src/index.ts`, import.meta.url)),
  ]),
);

export default defineConfig({
  resolve: { alias },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
