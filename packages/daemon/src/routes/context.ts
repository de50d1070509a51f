import type { ImageService } from '@berth/image';
import type { NetworkManager, Runtime, VolumeStore } from '@berth/runtime';
import type { ContainerService } from '../engine/containers.js';
import type { ExecService } from '../engine/exec.js';
import type { Logger } from '../logger.js';
import type { EventBus } from '../state/events.js';
import type { RegistryLogin } from '../engine/registry-login.js';
import type { ImageBuilder } from '../engine/build.js';

/** Everything a route handler may use. */
export interface DaemonServices {
  containers: ContainerService;
  execs: ExecService;
  images: ImageService;
  runtime: Runtime;
  events: EventBus;
  log: Logger;
  networks: NetworkManager;
  volumes: VolumeStore;
  login?: RegistryLogin;
  builder?: ImageBuilder;
  info: {
    id: string;
    name: string;
    dataRoot: string;
    execRoot: string;
    defaultRuntime: string;
    liveRestore: boolean;
    startedAt: Date;
    debug: boolean;
    labels: string[];
    insecureRegistries: string[];
  };
}
