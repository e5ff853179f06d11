import { keepingCopy } from "../image/layer/kept-copy.js";
import type { Image, Layer } from "../image/types.js";
import { parseReference } from "../registry/index.js";
import type { BuildOptions } from "./options.js";

/**
 * Whether an output of the build reads `layer`'s compressed blob once the build is done: an OCI layout or
 * an image tarball, or a push to a destination on a registry the layer does not come from (a registry
 * mounts only blobs it holds itself).
 */
export function outputReadsBlob(opts: Readonly<BuildOptions>, layer: Layer): boolean {
  if (opts.ociLayoutPath !== undefined || opts.tarPath !== undefined) return true;
  if (opts.noPush) return false;
  const from = new Set((layer.origins ?? []).map((o) => o.registry));
  return opts.destinations.some((d) => !from.has(parseReference(d).registry));
}

/**
 * `image` (the base of a stage whose layers reach the output image) with each layer an output reads again
 * wrapped by {@link keepingCopy}: the build keeps its blob in `dir` while it extracts it, and the output
 * reads that copy instead of downloading the blob a second time. Layers read from local disk already (no
 * origin), layers not verified while read, and layers no output reads stay as they are. The copies take
 * the compressed size of those layers in the build's directory until the build ends.
 */
export function keepBaseCopies(
  image: Image,
  dir: string,
  opts: Readonly<BuildOptions>,
  onKept: (layer: Layer) => void,
): Image {
  const keep = (l: Layer): boolean =>
    (l.origins ?? []).length > 0 && l.verifiesCompressed === true && outputReadsBlob(opts, l);
  if (!image.layers.some(keep)) return image;
  return { ...image, layers: image.layers.map((l) => (keep(l) ? keepingCopy(l, dir, onKept) : l)) };
}
