import {
  assembleImage,
  isDigest,
  MediaTypes,
  type Digest,
  type Image,
  type Layer,
  type ManifestFamily,
  type Platform,
} from "../image/index.js";
import { jsonAnnotation } from "./json-annotation.js";
import { cacheConfig } from "./cache-config.js";

/** Config field holding kiln's record of how a cache entry was made. */
export const RECORD_FIELD = "kiln.cache";

/**
 * Manifest annotation repeating what a lookup needs (record, creation time, layer diffID), so that
 * reading an entry is one manifest request instead of manifest + config. OCI-format entries only
 * (Docker manifests carry no annotations); readers fall back to the config.
 */
export const ENTRY_ANNOTATION = "dev.kiln.cache.entry";

/** Input fingerprints larger than this (as JSON) stay in the config only; explaining a miss then reads it. */
const MAX_ANNOTATED_INPUTS = 16 * 1024;

/** An entry read from its manifest annotation: `inputsComplete` is false when the inputs stayed in the config. */
export interface EntryHead {
  entry: CacheEntry;
  inputsComplete: boolean;
}

/** What a cache entry records about the step that produced it (stored in its image config). */
export interface CacheRecord {
  /** The entry's key (64 hex). */
  key: string;
  /** Position of the step (stage and step) the key was computed for; see {@link LayerCache.explain}. */
  slot: string;
  /** Fingerprint of every key input by name (values are hashed, never stored). */
  inputs: Record<string, string>;
  /** The history `created_by` of the step, reused verbatim on a hit. */
  createdBy: string;
}

/** A cached step result: its layer (absent when the step changed nothing) and its record. */
export interface CacheEntry {
  layer: Layer | undefined;
  record: CacheRecord;
  created: Date;
}

function familyOfLayer(layer: Layer | undefined): ManifestFamily {
  return layer?.mediaType.startsWith("application/vnd.docker.") ? "docker" : "oci";
}

/**
 * The image stored for one cache entry, like kaniko's: a single-layer image (zero layers when the
 * step changed nothing) whose config `created` is the write time (for `--cache-ttl`), whose history
 * records the step, and which carries the {@link CacheRecord} under {@link RECORD_FIELD}.
 */
export function entryImage(entry: CacheEntry, platform: Platform): Image {
  const created = entry.created.toISOString();
  return assembleImage({
    family: familyOfLayer(entry.layer),
    config: {
      ...cacheConfig(platform, created),
      history: [
        {
          created,
          created_by: entry.record.createdBy,
          comment: "kiln cache",
          ...(entry.layer ? {} : { empty_layer: true }),
        },
      ],
      [RECORD_FIELD]: entry.record,
    },
    layers: entry.layer ? [entry.layer] : [],
    annotations: { [ENTRY_ANNOTATION]: entryAnnotation(entry, created) },
  });
}

function entryAnnotation(entry: CacheEntry, created: string): string {
  const inputs = JSON.stringify(entry.record.inputs);
  const record = inputs.length <= MAX_ANNOTATED_INPUTS ? entry.record : { ...entry.record, inputs: undefined };
  return JSON.stringify({ record, created, ...(entry.layer ? { diffId: entry.layer.diffId } : {}) });
}

/**
 * Reads an entry from its manifest's {@link ENTRY_ANNOTATION}: `layerCount` layers (0 or 1) and
 * `layerOf(diffId)` building the lazy layer. Undefined when the annotation is absent or unusable.
 */
export function entryFromAnnotations(
  annotations: Readonly<Record<string, string>> | undefined,
  layerCount: number,
  layerOf: (diffId: Digest) => Layer,
): EntryHead | undefined {
  if (layerCount > 1) return undefined;
  const o = jsonAnnotation(annotations, ENTRY_ANNOTATION);
  if (!o) return undefined;
  const r = o.record as Record<string, unknown> | undefined;
  if (!r || typeof r !== "object") return undefined;
  const inputsComplete = !!r.inputs && typeof r.inputs === "object";
  const record = { ...r, inputs: inputsComplete ? r.inputs : {} };
  if (!isRecord(record) || typeof o.created !== "string") return undefined;
  const created = new Date(o.created);
  if (Number.isNaN(created.getTime())) return undefined;
  if (layerCount === 1 && (typeof o.diffId !== "string" || !isDigest(o.diffId))) return undefined;
  const layer = layerCount === 1 ? layerOf(o.diffId as Digest) : undefined;
  return { entry: { layer, record, created }, inputsComplete };
}

function isRecord(v: unknown): v is CacheRecord {
  if (!v || typeof v !== "object") return false;
  const r = v as Record<string, unknown>;
  return (
    typeof r.key === "string" &&
    typeof r.slot === "string" &&
    typeof r.createdBy === "string" &&
    !!r.inputs &&
    typeof r.inputs === "object"
  );
}

/**
 * Reads a cache entry back from its image. Returns undefined for images that are not kiln cache
 * entries (e.g. written by kaniko) or have more than one layer.
 */
export function entryFromImage(image: Image): CacheEntry | undefined {
  const rec = image.config[RECORD_FIELD];
  if (!isRecord(rec) || image.layers.length > 1) return undefined;
  const created = new Date(image.config.created ?? 0);
  if (Number.isNaN(created.getTime())) return undefined;
  return { layer: image.layers[0], record: rec, created };
}

/** True for layer media types a cache entry may hold. */
export function isCacheableLayerType(mt: string): boolean {
  return (
    mt === MediaTypes.dockerLayerGzip ||
    mt === MediaTypes.ociLayerGzip ||
    mt === MediaTypes.ociLayerZstd ||
    mt === MediaTypes.ociLayer
  );
}
