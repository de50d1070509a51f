// Run by crash.test.ts in a separate Node process (bundled with esbuild), then killed with SIGKILL.
import { openRuntime } from '@berth/runtime';
import type { ContainerSpec } from '@berth/runtime';

const [stateDir, cgroupParent, specsJson] = process.argv.slice(2) as [string, string, string];
const specs = JSON.parse(specsJson) as ContainerSpec[];
const runtime = await openRuntime({ stateDir, cgroupParent });
for (const spec of specs) {
  await runtime.create(spec);
  await runtime.start(spec.id);
}
await runtime.wait(specs[0]!.id);
process.stdout.write('READY\n');
setInterval(() => undefined, 1000);
