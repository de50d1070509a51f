import { join } from 'node:path';
import { BuildContext, imageContextForBuilds, openBuilder, type Builder, type BuildEvent, type ImageService } from '@berth/image';
import type { NetworkManager, Runtime } from '@berth/runtime';
import { DaemonError } from '../errors.js';
import type { BuildRequest, ImageBuilder } from './build.js';
import { RuntimeBuildExecutor } from './build-executor.js';

/**
 * `POST /build` over the Dockerfile builder of @berth/image, speaking the legacy builder's JSON
 * stream (`Step 1/N : …`). The builder writes into the same image context the image service
 * uses, so a built image is listed and runnable at once.
 */
export async function openLegacyBuilder(options: {
  root: string;
  images: ImageService;
  runtime: Runtime;
  networks: NetworkManager;
  insecure: string[];
}): Promise<ImageBuilder | undefined> {
  // Builds write into the image service's own store (a second context would keep its own copy
  // of images.json).
  const ctx = options.images.context;
  const { source, store } = imageContextForBuilds(ctx, {
    pull: async (ref, platform) => {
      await options.images.pull(ref, { platform, insecure: options.insecure });
    },
  });
  const builder: Builder = await openBuilder({
    root: options.root,
    executor: new RuntimeBuildExecutor(options.runtime, options.networks),
    images: source,
    store,
  });
  return {
    async prune(keepBytes: number): Promise<{ removed: number; reclaimed: number }> {
      const result = await builder.prune(keepBytes);
      return { removed: result.removedLayers + result.removedMounts, reclaimed: result.reclaimed };
    },
    async build(request: BuildRequest): Promise<{ id: string }> {
      const context = await BuildContext.fromTar(request.context, { tmpDir: join(options.root, 'tmp') });
      let failure: string | undefined;
      const onEvent = (event: BuildEvent): void => {
        switch (event.type) {
          case 'step-started':
            request.onMessage({ stream: `Step ${event.step}/${event.total} : ${event.instruction}\n` });
            break;
          case 'step-cached':
            request.onMessage({ stream: ' ---> Using cache\n' });
            break;
          case 'step-output':
            request.onMessage({ stream: event.line.endsWith('\n') ? event.line : `${event.line}\n` });
            break;
          case 'step-failed':
            failure = event.error;
            break;
          case 'warning':
            request.onMessage({ stream: `[WARNING]: ${event.message}\n` });
            break;
          default:
            break;
        }
      };
      try {
        const result = await builder.build({
          context,
          dockerfile: request.dockerfile,
          buildArgs: request.buildArgs,
          ...(request.target ? { target: request.target } : {}),
          tags: request.tags,
          labels: request.labels,
          noCache: request.noCache,
          ...(request.cacheFrom.length > 0 ? { cacheFrom: request.cacheFrom } : {}),
          ...(Object.keys(request.secrets).length > 0 ? { secrets: request.secrets } : {}),
          ...(request.platform ? { platform: request.platform } : {}),
          ...(request.networkMode === 'host' || request.networkMode === 'none' ? { network: request.networkMode } : {}),
          onEvent,
          ...(request.outputReady ? { outputReady: request.outputReady } : {}),
          ...(request.signal ? { signal: request.signal } : {}),
        });
        return { id: result.id };
      } catch (error) {
        if (failure && error instanceof Error && !error.message.includes(failure)) {
          throw new DaemonError('BUILD_FAILED', 'invalid', `${error.message}: ${failure}`, { cause: error });
        }
        throw error;
      } finally {
        await context.close().catch(() => undefined);
      }
    },
  };
}
