import { describe, expectTypeOf, it } from 'vitest';
import type {
  AttachSession,
  BerthClient,
  ContainerInspect,
  ContainerSummary,
  ContainerWaitResponse,
  EventMessage,
  ExecInspect,
  ImageInspect,
  ImageSummary,
  NetworkInspect,
  OutputFrame,
  PingResult,
  ProgressMessage,
  SystemInfo,
  VersionInfo,
  Volume,
  VolumeListResponse,
} from './index.js';

// Pins the shapes callers rely on: a change here is a breaking change of the client's API.
describe('response types', () => {
  it('pins what the main calls resolve with', () => {
    expectTypeOf<BerthClient['containers']['list']>().returns.resolves.toEqualTypeOf<ContainerSummary[]>();
    expectTypeOf<BerthClient['containers']['inspect']>().returns.resolves.toEqualTypeOf<ContainerInspect>();
    expectTypeOf<BerthClient['containers']['wait']>().returns.resolves.toEqualTypeOf<ContainerWaitResponse>();
    expectTypeOf<BerthClient['containers']['logs']>().returns.resolves.toEqualTypeOf<AsyncIterable<OutputFrame>>();
    expectTypeOf<BerthClient['containers']['attach']>().returns.resolves.toEqualTypeOf<AttachSession>();
    expectTypeOf<BerthClient['exec']['inspect']>().returns.resolves.toEqualTypeOf<ExecInspect>();
    expectTypeOf<BerthClient['images']['list']>().returns.resolves.toEqualTypeOf<ImageSummary[]>();
    expectTypeOf<BerthClient['images']['inspect']>().returns.resolves.toEqualTypeOf<ImageInspect>();
    expectTypeOf<BerthClient['images']['pull']>().returns.resolves.toEqualTypeOf<AsyncIterable<ProgressMessage>>();
    expectTypeOf<BerthClient['images']['build']>().returns.resolves.toEqualTypeOf<AsyncIterable<ProgressMessage>>();
    expectTypeOf<BerthClient['networks']['inspect']>().returns.resolves.toEqualTypeOf<NetworkInspect>();
    expectTypeOf<BerthClient['volumes']['list']>().returns.resolves.toEqualTypeOf<VolumeListResponse>();
    expectTypeOf<BerthClient['volumes']['create']>().returns.resolves.toEqualTypeOf<Volume>();
    expectTypeOf<BerthClient['system']['events']>().returns.resolves.toEqualTypeOf<AsyncIterable<EventMessage>>();
    expectTypeOf<BerthClient['system']['version']>().returns.resolves.toEqualTypeOf<VersionInfo>();
    expectTypeOf<BerthClient['system']['info']>().returns.resolves.toEqualTypeOf<SystemInfo>();
    expectTypeOf<BerthClient['ping']>().returns.resolves.toEqualTypeOf<PingResult>();
  });

  it('pins the fields of the main shapes', () => {
    expectTypeOf<ContainerSummary>().toHaveProperty('Names').toEqualTypeOf<string[]>();
    expectTypeOf<ContainerSummary>().toHaveProperty('Created').toEqualTypeOf<number>();
    expectTypeOf<ContainerInspect['State']>().toHaveProperty('ExitCode').toEqualTypeOf<number>();
    expectTypeOf<ContainerInspect['Config']>().toHaveProperty('Tty').toEqualTypeOf<boolean | undefined>();
    expectTypeOf<ContainerWaitResponse>().toHaveProperty('StatusCode').toEqualTypeOf<number>();
    expectTypeOf<ExecInspect>().toHaveProperty('ExitCode').toEqualTypeOf<number | null>();
    expectTypeOf<OutputFrame>().toEqualTypeOf<{ stream: 'stdout' | 'stderr'; data: Buffer }>();
    expectTypeOf<ImageSummary>().toHaveProperty('RepoTags').toEqualTypeOf<string[] | null>();
    expectTypeOf<ImageInspect>().toHaveProperty('Created').toEqualTypeOf<string>();
    expectTypeOf<ProgressMessage>().toHaveProperty('errorDetail').toEqualTypeOf<{ code?: number; message: string } | undefined>();
    expectTypeOf<EventMessage>().toHaveProperty('timeNano').toEqualTypeOf<number>();
  });
});
