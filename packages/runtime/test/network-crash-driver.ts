/**
 * A stand-in for berthd in the crash test: opens a NetworkManager, sets up the containers it is
 * told to, prints their setups as one JSON line, then idles until it is killed (-9) by the test.
 * Bundled with esbuild and run by plain node, so it is a process of its own.
 */
import { NetworkManager } from '../src/network/manager.js';
import type { ContainerNetworkRequest, NetworkManagerOptions } from '../src/network/types.js';

const input = JSON.parse(process.argv[2] ?? '{}') as {
  options: NetworkManagerOptions;
  networks: { name: string; subnet: string }[];
  containers: ContainerNetworkRequest[];
};
const m = await NetworkManager.open(input.options);
await m.reconcile([]);
for (const n of input.networks) await m.create({ name: n.name, ipam: { Config: [{ Subnet: n.subnet }] } });
const setups = [];
for (const c of input.containers) setups.push(await m.setupContainer(c));
process.stdout.write(JSON.stringify(setups) + '\n');
setInterval(() => undefined, 1 << 30);
