import type { Digest, Image, Layer, Platform } from "../image/index.js";
import { artifactDiffId, artifactImage } from "./artifact.js";
import type { ManifestView } from "./store.js";

/**
 * Skeleton records: what a COPY on a skeleton root needs of the filesystem before it (its directories and
 * symlinks with their metadata, and the paths of everything else), stored in the cache under the chain
 * key of that filesystem, so that a build without local state reads one small blob instead of the layers'
 * headers. The cache stores the encoded record as given (the build encodes and decodes it).
 */

/** Manifest annotation (and config field) of a record: `{"v":1,"key":<key>,"diffId":<its layer's>}`. */
export const SKELETON_RECORD_ANNOTATION = "dev.kiln.cache.skeleton";
/** Format version, part of the tag. */
const SKELETON_RECORD_VERSION = 1;
/** Records are read whole into memory: larger ones (a root of millions of paths) are not used. */
export const MAX_SKELETON_RECORD_BYTES = 256 * 1024 * 1024;

/** Cache tag of the record for the filesystem with key `key` (64 hex). */
export function skeletonRecordTag(key: string): string {
  return `skel${SKELETON_RECORD_VERSION}-${key.slice(0, 64)}`;
}

/** The diffID of the record's layer when `view` is the record for `key`; undefined otherwise. */
export function skeletonRecordDiffId(view: ManifestView | undefined, key: string): Digest | undefined {
  return artifactDiffId(view, SKELETON_RECORD_ANNOTATION, { v: SKELETON_RECORD_VERSION, key });
}

/** The image stored under {@link skeletonRecordTag}. */
export function skeletonRecordImage(key: string, layer: Layer, platform: Platform): Image {
  const record = { v: SKELETON_RECORD_VERSION, key, diffId: layer.diffId };
  return artifactImage(SKELETON_RECORD_ANNOTATION, record, layer, platform, "kiln skeleton record");
}
