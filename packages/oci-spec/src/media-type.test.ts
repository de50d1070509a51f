import { describe, expect, it } from 'vitest';
import { digestOf } from './digest/digest.js';
import {
  EMPTY_JSON_DIGEST,
  EMPTY_JSON_SIZE,
  MediaType,
  baseMediaType,
  isConfigMediaType,
  isForeignLayerMediaType,
  isIndexMediaType,
  isLayerMediaType,
  isManifestMediaType,
  layerCompression,
} from './media-type.js';

describe('MediaType', () => {
  it('has the wire strings', () => {
    expect(MediaType.ImageManifest).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(MediaType.ImageIndex).toBe('application/vnd.oci.image.index.v1+json');
    expect(MediaType.DockerManifest).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(MediaType.DockerManifestList).toBe('application/vnd.docker.distribution.manifest.list.v2+json');
    expect(MediaType.DockerConfig).toBe('application/vnd.docker.container.image.v1+json');
    expect(MediaType.DockerLayerGzip).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip');
  });

  it('the empty JSON descriptor constants match the content {}', () => {
    expect(digestOf('{}')).toBe(EMPTY_JSON_DIGEST);
    expect(EMPTY_JSON_SIZE).toBe(2);
  });

  it('classifies manifests, indexes, layers and configs', () => {
    expect(isManifestMediaType(MediaType.ImageManifest)).toBe(true);
    expect(isManifestMediaType(MediaType.DockerManifest)).toBe(true);
    expect(isManifestMediaType(MediaType.ImageIndex)).toBe(false);
    expect(isManifestMediaType(undefined)).toBe(false);
    expect(isIndexMediaType(MediaType.ImageIndex)).toBe(true);
    expect(isIndexMediaType(`${MediaType.DockerManifestList}; charset=utf-8`)).toBe(true);
    expect(isIndexMediaType(MediaType.ImageManifest)).toBe(false);
    for (const mt of [MediaType.Layer, MediaType.LayerGzip, MediaType.LayerZstd, MediaType.DockerLayerGzip, MediaType.DockerForeignLayerGzip]) {
      expect(isLayerMediaType(mt)).toBe(true);
    }
    expect(isLayerMediaType(MediaType.ImageConfig)).toBe(false);
    expect(isConfigMediaType(MediaType.ImageConfig)).toBe(true);
    expect(isConfigMediaType(MediaType.DockerConfig)).toBe(true);
    expect(isConfigMediaType(MediaType.EmptyJson)).toBe(false);
    expect(isForeignLayerMediaType(MediaType.DockerForeignLayerGzip)).toBe(true);
    expect(isForeignLayerMediaType(MediaType.LayerGzip)).toBe(false);
  });

  it('tells layer compression', () => {
    expect(layerCompression(MediaType.Layer)).toBe('none');
    expect(layerCompression(MediaType.LayerGzip)).toBe('gzip');
    expect(layerCompression(MediaType.DockerLayerGzip)).toBe('gzip');
    expect(layerCompression(MediaType.LayerZstd)).toBe('zstd');
    expect(layerCompression(MediaType.ImageConfig)).toBeUndefined();
    expect(baseMediaType(' Application/JSON; charset=utf-8')).toBe('application/json');
  });
});
