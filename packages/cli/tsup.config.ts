import { fileURLToPath } from 'node:url';
import { defineConfig } from 'tsup';
import type { Plugin } from 'esbuild';

// The bin is bundled with the client (and ky) and split into chunks
// loaded on demand: `berth version` loads the command tree, the client and node:http — not the
// daemon, the registry, tar, or ky/fetch. @berth/daemon and @berth/registry stay external and are
// imported only by `berth daemon` / `berth registry serve`.
//
// `@berth/oci-spec` (imported by the client for BerthError only) resolves to a light stand-in:
// its real entry compiles every ajv schema when loaded, which costs more than `berth ps` itself.
// See src/bundle/oci-spec-errors.ts.
const lightOciSpec: Plugin = {
  name: 'berth-light-oci-spec',
  setup(build) {
    const target = fileURLToPath(new URL('./src/bundle/oci-spec-errors.ts', import.meta.url));
    build.onResolve({ filter: /^@berth\/oci-spec$/ }, () => ({ path: target }));
  },
};

export default defineConfig({
  entry: ['src/index.ts', 'src/bin.ts'],
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  dts: { entry: 'src/index.ts' },
  sourcemap: true,
  clean: true,
  splitting: true,
  noExternal: ['@berth/client', '@berth/oci-spec', 'ky'],
  external: ['@berth/daemon', '@berth/registry', '@berth/image', '@berth/runtime', 'tar', '@balena/dockerignore'],
  esbuildPlugins: [lightOciSpec],
});
