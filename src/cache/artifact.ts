import { Readable } from "node:stream";
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import {
  assembleImage,
  decompressAuto,
  isDigest,
  MediaTypes,
  sha256Digest,
  type Digest,
  type Image,
  type Layer,
  type Platform,
} from "../image/index.js";
import { jsonAnnotation } from "./json-annotation.js";
import type { ManifestView } from "./store.js";
import { cacheConfig } from "./cache-config.js";

/**
 * Cache artifacts: data kiln keeps in the cache next to the entries (header copies, skeleton records),
 * each a one-layer OCI image whose manifest annotation `annotation` holds its JSON record, so that any
 * cache backend stores it and a reader checks what it is from the manifest alone.
 */

/** A gzip layer held in memory. */
export function memoryLayer(data: Buffer, digest: Digest, diffId: Digest): Layer {
  return {
    mediaType: MediaTypes.ociLayerGzip,
    digest,
    diffId,
    size: data.length,
    openCompressed: () => Promise.resolve(Readable.from([data])),
    openUncompressed: () => decompressAuto(Readable.from([data])),
  };
}

/** `plain` as a gzip layer in memory (compressed in the thread pool). */
export async function gzipLayer(plain: Buffer): Promise<Layer> {
  const data = await promisify(gzip)(plain, { level: 6 });
  return memoryLayer(data, sha256Digest(data), sha256Digest(plain));
}

/** The image stored for an artifact: `layer`, with `record` in the manifest annotation `annotation` (and the config). */
export function artifactImage(
  annotation: string,
  record: Record<string, unknown>,
  layer: Layer,
  platform: Platform,
  createdBy: string,
): Image {
  const created = new Date(0).toISOString();
  return assembleImage({
    family: "oci",
    config: {
      ...cacheConfig(platform, created),
      history: [{ created, created_by: createdBy, comment: "kiln cache" }],
      [annotation]: record,
    },
    layers: [layer],
    annotations: { [annotation]: JSON.stringify(record) },
  });
}

/**
 * The diffID of an artifact's one layer, when `view` is a one-layer image whose `annotation` record holds
 * every field of `expect` with that value (format version, what it was made of); undefined otherwise.
 */
export function artifactDiffId(
  view: ManifestView | undefined,
  annotation: string,
  expect: Readonly<Record<string, string | number>>,
): Digest | undefined {
  if (!view || view.layerCount !== 1) return undefined;
  const rec = jsonAnnotation(view.annotations, annotation);
  if (!rec || Object.entries(expect).some(([k, v]) => rec[k] !== v)) return undefined;
  const diffId = rec["diffId"];
  return typeof diffId === "string" && isDigest(diffId) ? diffId : undefined;
}
