import { KilnError } from "../common/errors.js";
import { assembleImage } from "./assemble.js";
import { familyOf, MediaTypes, type ManifestFamily } from "./media-types.js";
import type { Image, Layer } from "./types.js";

/** Layer media types that carry the same blob in the other family (gzip tar, foreign/non-distributable). */
const TO_DOCKER: Readonly<Record<string, string>> = {
  [MediaTypes.ociLayerGzip]: MediaTypes.dockerLayerGzip,
  [MediaTypes.ociLayerNondistGzip]: MediaTypes.dockerLayerForeignGzip,
  [MediaTypes.dockerLayerGzip]: MediaTypes.dockerLayerGzip,
  [MediaTypes.dockerLayerForeignGzip]: MediaTypes.dockerLayerForeignGzip,
};
const TO_OCI: Readonly<Record<string, string>> = {
  [MediaTypes.dockerLayerGzip]: MediaTypes.ociLayerGzip,
  [MediaTypes.dockerLayerForeignGzip]: MediaTypes.ociLayerNondistGzip,
};

/**
 * The media type a layer gets in a manifest of `family`: the same blob, relabelled (Docker v2
 * schema 2 ⇄ OCI). Docker manifests only carry gzip layers.
 * @throws KilnError IMAGE_FORMAT_LAYER for a zstd or uncompressed layer in a Docker manifest.
 */
export function layerMediaTypeIn(family: ManifestFamily, layer: Pick<Layer, "mediaType" | "digest">): string {
  if (family === "oci") return TO_OCI[layer.mediaType] ?? layer.mediaType;
  const mt = TO_DOCKER[layer.mediaType];
  if (mt === undefined) {
    throw new KilnError(
      "IMAGE_FORMAT_LAYER",
      `--image-format=docker: layer ${layer.digest} is ${layer.mediaType}, which a Docker v2 schema 2 manifest ` +
        `cannot carry (gzip layers only); use --image-format=oci or a gzip-compressed base image`,
    );
  }
  return mt;
}

/** A view of `layer` under another media type; content, digests and mount origins are unchanged. */
export function relabelLayer(layer: Layer, mediaType: string): Layer {
  if (layer.mediaType === mediaType) return layer;
  return {
    mediaType,
    digest: layer.digest,
    diffId: layer.diffId,
    size: layer.size,
    ...(layer.annotations ? { annotations: layer.annotations } : {}),
    ...(layer.origins ? { origins: layer.origins } : {}),
    ...(layer.localFile ? { localFile: layer.localFile } : {}),
    openCompressed: (signal) => layer.openCompressed(signal),
    openUncompressed: (signal) => layer.openUncompressed(signal),
  };
}

/**
 * `image` as a manifest of `family` (`--image-format`): the manifest and config media types of that
 * family, every layer relabelled with {@link layerMediaTypeIn}. Returns `image` itself when it
 * already is of that family and needs no relabelling (its digest is then preserved).
 * @throws KilnError IMAGE_FORMAT_LAYER when a layer cannot be expressed in `family`.
 */
export function convertImageFormat(image: Image, family: ManifestFamily): Image {
  const layers = image.layers.map((l) => relabelLayer(l, layerMediaTypeIn(family, l)));
  const same = familyOf(image.mediaType) === family && layers.every((l, i) => l === image.layers[i]);
  if (same) return image;
  return assembleImage({
    family,
    config: image.config,
    layers,
    ...(image.manifest.annotations ? { annotations: image.manifest.annotations } : {}),
  });
}
