import { createHash } from "node:crypto";
import { assembleImage, isDigest, type Digest, type Image, type Layer, type Platform } from "../image/index.js";
import type { CacheEntry, CacheRecord, EntryHead } from "./entry.js";
import { jsonAnnotation } from "./json-annotation.js";
import { cacheConfig } from "./cache-config.js";

/**
 * A chain record: one cache tag per stage whose manifest carries the latest entry of every step
 * position ("slot") of the stage, so a rebuild reads all of them with one request instead of one
 * `slot-…` read per step. The manifest lists the entries' layers (so a registry keeps their blobs
 * and a hit can be mounted from there) and {@link CHAIN_ANNOTATION} holds the records.
 */
export const CHAIN_ANNOTATION = "dev.kiln.cache.chain";

/** Format version of {@link CHAIN_ANNOTATION}; readers ignore other versions. */
const CHAIN_VERSION = 1;

/** Inputs of one entry larger than this (as JSON) are left out of the chain; explaining reads the entry. */
const MAX_ENTRY_INPUTS = 16 * 1024;
/** Budget of all inputs in one chain, so that a long stage stays far below registry manifest limits. */
const MAX_CHAIN_INPUTS = 512 * 1024;
/**
 * A chain manifest larger than this is not written (registries refuse manifests of a few MiB; e.g.
 * very long RUN texts): the stage's positions are then read one by one, as without chains.
 */
export const MAX_CHAIN_MANIFEST_BYTES = 2 * 1024 * 1024;

/**
 * Tag of the chain record of a stage whose cacheable step positions are `slots`, in order, built for
 * `platform`: `chain-` and the sha256 of the framed platform and slot list. Slots name the Dockerfile,
 * the stage and the step, so the tag differs between stages and Dockerfiles; the platform keeps
 * builds of one Dockerfile for several platforms from overwriting each other's chain; the prefix
 * keeps it apart from key tags (64 hex) and `slot-` tags.
 */
export function chainTag(slots: readonly string[], platform: Platform): string {
  const h = createHash("sha256");
  const frame = (s: string): void => {
    const b = Buffer.from(s, "utf8");
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(b.length));
    h.update(len);
    h.update(b);
  };
  frame("kiln-cache-chain-v1");
  frame([platform.os, platform.architecture, platform.variant ?? ""].join("/"));
  for (const s of slots) frame(s);
  return `chain-${h.digest("hex")}`;
}

/** The latest entry per slot that a chain records (`undefined`: the chain covers the slot, with no entry). */
export type ChainEntries = ReadonlyMap<string, EntryHead | undefined>;

/** The chain image: the entries' distinct layers in order, the records in {@link CHAIN_ANNOTATION}. */
export function chainImage(slots: readonly string[], entries: ChainEntries, platform: Platform): Image {
  const layers: Layer[] = [];
  const index = new Map<Digest, number>();
  let budget = MAX_CHAIN_INPUTS;
  const list = slots.map((slot) => {
    const head = entries.get(slot);
    if (!head) return { slot, entry: null };
    const { layer, record, created } = head.entry;
    let layerIndex: number | undefined;
    if (layer) {
      layerIndex = index.get(layer.digest);
      if (layerIndex === undefined) {
        layerIndex = layers.length;
        index.set(layer.digest, layerIndex);
        layers.push(layer);
      }
    }
    const inputs = head.inputsComplete ? JSON.stringify(record.inputs) : undefined;
    const keep = inputs !== undefined && inputs.length <= MAX_ENTRY_INPUTS && inputs.length <= budget;
    if (keep) budget -= inputs.length;
    return {
      slot,
      entry: {
        record: keep ? record : { ...record, inputs: undefined },
        created: created.toISOString(),
        ...(layer ? { layer: layerIndex, diffId: layer.diffId } : {}),
      },
    };
  });
  const created = new Date(0).toISOString();
  return assembleImage({
    family: "oci",
    config: {
      ...cacheConfig(platform, created),
      history: layers.map(() => ({ created, created_by: "kiln cache chain", comment: "kiln cache" })),
    },
    layers,
    annotations: { [CHAIN_ANNOTATION]: JSON.stringify({ v: CHAIN_VERSION, slots: list }) },
  });
}

/**
 * Reads a chain from its manifest's annotations: `layerCount` layers in the manifest and
 * `layerOf(i, diffId)` building the lazy layer `i`. Undefined when the annotation is absent or not a
 * chain this version writes. An entry that does not parse, or whose record names another slot, leaves
 * its slot uncovered (the caller then reads the slot itself), so a damaged entry costs a request,
 * never a wrong hit.
 */
export function chainFromAnnotations(
  annotations: Readonly<Record<string, string>> | undefined,
  layerCount: number,
  layerOf: (i: number, diffId: Digest) => Layer,
): ChainEntries | undefined {
  const o = jsonAnnotation(annotations, CHAIN_ANNOTATION);
  if (!o || o.v !== CHAIN_VERSION || !Array.isArray(o.slots)) return undefined;
  const out = new Map<string, EntryHead | undefined>();
  for (const item of o.slots as unknown[]) {
    if (!item || typeof item !== "object") continue;
    const { slot, entry } = item as { slot?: unknown; entry?: unknown };
    if (typeof slot !== "string" || out.has(slot)) continue;
    if (entry === null) {
      out.set(slot, undefined);
      continue;
    }
    const head = entryOf(entry, slot, layerCount, layerOf);
    if (head) out.set(slot, head);
  }
  return out;
}

function entryOf(
  v: unknown,
  slot: string,
  layerCount: number,
  layerOf: (i: number, diffId: Digest) => Layer,
): EntryHead | undefined {
  if (!v || typeof v !== "object") return undefined;
  const o = v as { record?: unknown; created?: unknown; layer?: unknown; diffId?: unknown };
  const r = o.record as Record<string, unknown> | undefined;
  if (!r || typeof r !== "object") return undefined;
  if (typeof r.key !== "string" || r.slot !== slot || typeof r.createdBy !== "string") return undefined;
  const inputsComplete = !!r.inputs && typeof r.inputs === "object" && !Array.isArray(r.inputs);
  const inputs = inputsComplete ? stringMap(r.inputs) : {};
  if (!inputs) return undefined;
  const record: CacheRecord = { key: r.key, slot, inputs, createdBy: r.createdBy };
  if (typeof o.created !== "string") return undefined;
  const created = new Date(o.created);
  if (Number.isNaN(created.getTime())) return undefined;
  let layer: Layer | undefined;
  if (o.layer !== undefined) {
    const i = o.layer;
    if (typeof i !== "number" || !Number.isInteger(i) || i < 0 || i >= layerCount) return undefined;
    if (typeof o.diffId !== "string" || !isDigest(o.diffId)) return undefined;
    layer = layerOf(i, o.diffId);
  }
  const entry: CacheEntry = { layer, record, created };
  return { entry, inputsComplete };
}

function stringMap(v: unknown): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x !== "string") return undefined;
    out[k] = x;
  }
  return out;
}

/**
 * True when `a` and `b` record the same entry: key, slot, layer and creation time (whether its inputs
 * fit in the chain does not matter: a chain that had to leave them out is still current).
 */
export function sameEntry(a: EntryHead | undefined, b: EntryHead | undefined): boolean {
  if (!a || !b) return a === b;
  return (
    a.entry.record.key === b.entry.record.key &&
    a.entry.record.slot === b.entry.record.slot &&
    a.entry.layer?.digest === b.entry.layer?.digest &&
    a.entry.created.getTime() === b.entry.created.getTime()
  );
}
