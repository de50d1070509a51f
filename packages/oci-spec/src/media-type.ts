/**
 * Media types of the OCI image spec v1.1 and Docker's image manifest v2 schema 2, by the names
 * berth uses in code. Values are the exact strings that appear on the wire.
 */
export const MediaType = {
  // OCI image spec v1.1
  Descriptor: 'application/vnd.oci.descriptor.v1+json',
  ImageLayout: 'application/vnd.oci.layout.header.v1+json',
  ImageManifest: 'application/vnd.oci.image.manifest.v1+json',
  ImageIndex: 'application/vnd.oci.image.index.v1+json',
  ImageConfig: 'application/vnd.oci.image.config.v1+json',
  Layer: 'application/vnd.oci.image.layer.v1.tar',
  LayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  LayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  LayerNonDistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  LayerNonDistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  LayerNonDistributableZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  EmptyJson: 'application/vnd.oci.empty.v1+json',
  // Docker image manifest v2, schema 2
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  DockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  DockerPluginConfig: 'application/vnd.docker.plugin.v1+json',
  // Docker schema 1 (legacy; recognised so that callers can refuse it by name)
  DockerManifestV1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerManifestV1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  // BuildKit in-toto attestations
  InToto: 'application/vnd.in-toto+json',
} as const;

export type MediaTypeName = keyof typeof MediaType;
export type KnownMediaType = (typeof MediaType)[MediaTypeName];

/** The empty JSON descriptor's content (`{}`), digest and size, as defined by image-spec v1.1. */
export const EMPTY_JSON_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';
export const EMPTY_JSON_SIZE = 2;

/** Accept-header value for fetching any manifest or index berth understands, best first. */
export const MANIFEST_ACCEPT = [
  MediaType.ImageIndex,
  MediaType.DockerManifestList,
  MediaType.ImageManifest,
  MediaType.DockerManifest,
] as const;

/** The media type without parameters (`; charset=utf-8`), lower-cased. */
export function baseMediaType(mediaType: string): string {
  const semi = mediaType.indexOf(';');
  return (semi === -1 ? mediaType : mediaType.slice(0, semi)).trim().toLowerCase();
}

/** A single-image manifest: OCI image manifest or Docker schema2 manifest. */
export function isManifestMediaType(mediaType: string | undefined): boolean {
  if (mediaType === undefined) return false;
  const mt = baseMediaType(mediaType);
  return mt === MediaType.ImageManifest || mt === MediaType.DockerManifest;
}

/** A multi-platform index: OCI image index or Docker manifest list. */
export function isIndexMediaType(mediaType: string | undefined): boolean {
  if (mediaType === undefined) return false;
  const mt = baseMediaType(mediaType);
  return mt === MediaType.ImageIndex || mt === MediaType.DockerManifestList;
}

const LAYER_MEDIA_TYPES: ReadonlySet<string> = new Set([
  MediaType.Layer,
  MediaType.LayerGzip,
  MediaType.LayerZstd,
  MediaType.LayerNonDistributable,
  MediaType.LayerNonDistributableGzip,
  MediaType.LayerNonDistributableZstd,
  MediaType.DockerLayerGzip,
  MediaType.DockerLayer,
  MediaType.DockerForeignLayerGzip,
]);

/** A filesystem layer (tar, possibly gzip- or zstd-compressed), OCI or Docker. */
export function isLayerMediaType(mediaType: string | undefined): boolean {
  if (mediaType === undefined) return false;
  return LAYER_MEDIA_TYPES.has(baseMediaType(mediaType));
}

/** An image config: OCI or Docker. */
export function isConfigMediaType(mediaType: string | undefined): boolean {
  if (mediaType === undefined) return false;
  const mt = baseMediaType(mediaType);
  return mt === MediaType.ImageConfig || mt === MediaType.DockerConfig;
}

/** Non-distributable ("foreign") layers, which registries may refuse and clients fetch from `urls`. */
export function isForeignLayerMediaType(mediaType: string | undefined): boolean {
  if (mediaType === undefined) return false;
  const mt = baseMediaType(mediaType);
  return (
    mt === MediaType.DockerForeignLayerGzip ||
    mt === MediaType.LayerNonDistributable ||
    mt === MediaType.LayerNonDistributableGzip ||
    mt === MediaType.LayerNonDistributableZstd
  );
}

export type LayerCompression = 'none' | 'gzip' | 'zstd';

/** Compression of a layer media type, or undefined when it is not a layer media type. */
export function layerCompression(mediaType: string): LayerCompression | undefined {
  const mt = baseMediaType(mediaType);
  if (!LAYER_MEDIA_TYPES.has(mt)) return undefined;
  if (mt.endsWith('+gzip') || mt.endsWith('.tar.gzip')) return 'gzip';
  if (mt.endsWith('+zstd')) return 'zstd';
  return 'none';
}
