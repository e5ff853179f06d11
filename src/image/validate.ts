import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { KilnError } from "../common/errors.js";
import { sha256Digest } from "./digest.js";
import { configMediaType, familyOf, MediaTypes } from "./media-types.js";
import type { Image } from "./types.js";

const DOCKER_LAYERS: ReadonlySet<string> = new Set([MediaTypes.dockerLayerGzip, MediaTypes.dockerLayerForeignGzip]);
const OCI_LAYERS: ReadonlySet<string> = new Set([
  MediaTypes.ociLayer,
  MediaTypes.ociLayerGzip,
  MediaTypes.ociLayerZstd,
  MediaTypes.ociLayerNondistGzip,
  "application/vnd.oci.image.layer.nondistributable.v1.tar",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
]);

async function hashStream(s: Readable): Promise<{ digest: string; size: number }> {
  const h = createHash("sha256");
  let size = 0;
  for await (const c of s) {
    const b = c as Buffer;
    size += b.length;
    h.update(b);
  }
  return { digest: `sha256:${h.digest("hex")}`, size };
}

/**
 * Checks an image's invariants and throws KilnError IMAGE_INVALID listing every violation: manifest
 * digest, config digest and size, layer descriptors vs layers, diff_ids vs layers, media types
 * consistent with the manifest family. With `deep`, also reads every layer and checks its blob
 * digest, size and uncompressed digest (diffID).
 */
export async function validateImage(image: Image, opts?: { deep?: boolean }): Promise<void> {
  const problems: string[] = [];
  const m = image.manifest;
  if (sha256Digest(image.rawManifest) !== image.digest) problems.push("digest is not the sha256 of rawManifest");
  if (m.mediaType !== undefined && m.mediaType !== image.mediaType) {
    problems.push(`manifest mediaType ${m.mediaType} differs from image mediaType ${image.mediaType}`);
  }
  if (sha256Digest(image.rawConfig) !== m.config.digest) problems.push("config digest does not match rawConfig");
  if (image.rawConfig.length !== m.config.size) problems.push("config size does not match rawConfig");
  const family = familyOf(image.mediaType);
  if (m.config.mediaType !== configMediaType(family)) {
    problems.push(`config mediaType ${m.config.mediaType} does not belong to a ${family} manifest`);
  }
  if (m.layers.length !== image.layers.length) {
    problems.push(`manifest lists ${m.layers.length} layers, image has ${image.layers.length}`);
  }
  const diffIds = image.config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== image.layers.length) {
    problems.push(`config has ${diffIds.length} diff_ids for ${image.layers.length} layers`);
  }
  const allowed = family === "docker" ? DOCKER_LAYERS : OCI_LAYERS;
  image.layers.forEach((l, i) => {
    const d = m.layers[i];
    if (d && (d.digest !== l.digest || d.size !== l.size || d.mediaType !== l.mediaType)) {
      problems.push(`layer ${i}: manifest descriptor differs from the layer (${d.digest} vs ${l.digest})`);
    }
    if (diffIds[i] !== undefined && diffIds[i] !== l.diffId) problems.push(`layer ${i}: diff_id differs from layer`);
    if (!allowed.has(l.mediaType)) problems.push(`layer ${i}: mediaType ${l.mediaType} in a ${family} manifest`);
  });
  if (opts?.deep) {
    for (const [i, l] of image.layers.entries()) {
      try {
        const blob = await hashStream(await l.openCompressed());
        if (blob.digest !== l.digest || blob.size !== l.size) {
          problems.push(`layer ${i}: blob is ${blob.digest} (${blob.size} bytes), expected ${l.digest} (${l.size})`);
        }
        const tar = await hashStream(await l.openUncompressed());
        if (tar.digest !== l.diffId)
          problems.push(`layer ${i}: uncompressed digest ${tar.digest} != diffID ${l.diffId}`);
      } catch (e) {
        problems.push(`layer ${i}: cannot be read: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
  if (problems.length > 0) {
    throw new KilnError("IMAGE_INVALID", `image ${image.digest} is inconsistent: ${problems.join("; ")}`);
  }
}
