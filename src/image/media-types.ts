/** OCI and Docker media types kiln reads and writes (OCI image-spec v1.1, Docker image manifest v2.2). */
export const MediaTypes = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  ociLayerNondistGzip: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerManifestSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  dockerManifestSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerLayerForeignGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
} as const;

/** Manifest family: decides the media types of config and new layers (kaniko follows the base image). */
export type ManifestFamily = "oci" | "docker";

/** Layer compression kiln can produce. */
export type Compression = "gzip" | "zstd" | "none";

/** Family of a manifest media type. */
export function familyOf(manifestMediaType: string): ManifestFamily {
  return manifestMediaType === MediaTypes.dockerManifest ? "docker" : "oci";
}

/** Media type of a new layer in the given family with the given compression. */
export function layerMediaType(family: ManifestFamily, compression: Compression): string {
  if (family === "docker") return MediaTypes.dockerLayerGzip; // Docker v2.2 has only gzip layers
  if (compression === "zstd") return MediaTypes.ociLayerZstd;
  if (compression === "none") return MediaTypes.ociLayer;
  return MediaTypes.ociLayerGzip;
}

/** Config media type for a family. */
export function configMediaType(family: ManifestFamily): string {
  return family === "docker" ? MediaTypes.dockerConfig : MediaTypes.ociConfig;
}

/** Manifest media type for a family. */
export function manifestMediaType(family: ManifestFamily): string {
  return family === "docker" ? MediaTypes.dockerManifest : MediaTypes.ociManifest;
}

/** True for index / manifest-list media types. */
export function isIndexMediaType(mt: string | undefined): boolean {
  return mt === MediaTypes.ociIndex || mt === MediaTypes.dockerManifestList;
}
