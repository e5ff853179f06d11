import { KilnError } from "../common/errors.js";
import type { Digest, Image, Layer } from "../image/index.js";
import type { EntryHead } from "./entry.js";

/** A manifest read on its own: its annotations and its layers as lazy layers (the caller knows their diffIDs). */
export interface ManifestView {
  annotations: Readonly<Record<string, string>> | undefined;
  layerCount: number;
  /** Layer `i` of the manifest with diffID `diffId`. */
  layer(i: number, diffId: Digest): Layer;
}

/**
 * Where cache entries live: a map from a tag (a cache key, a `slot-…` pointer to the latest entry
 * of a step position, or a `chain-…` record of a stage's positions) to a small image.
 * Implementations must tolerate concurrent writers.
 */
export interface CacheStore {
  /** Human-readable location, e.g. `registry.example/app/cache` or `oci:/cache`. */
  readonly description: string;
  /**
   * Whether per-stage chain records (see chain.ts) are kept in this store: worth it where each read
   * costs a round trip and a chain stores no second copy of the layers.
   */
  readonly keepsChains?: boolean;
  /** The image under `tag`, or undefined when there is none. Throws on other failures. */
  read(tag: string, signal?: AbortSignal): Promise<Image | undefined>;
  /**
   * Optional cheaper read of the entry under `tag` (e.g. from its manifest annotation, one request);
   * undefined when there is none or it is not a kiln entry. Throws on other failures.
   */
  readHead?(tag: string, signal?: AbortSignal): Promise<EntryHead | undefined>;
  /** Optional read of the manifest under `tag` alone (one request); undefined when there is none. */
  readManifest?(tag: string, signal?: AbortSignal): Promise<ManifestView | undefined>;
  /**
   * Stores `image` under `tag`, replacing what was there. `replace`: what the tag held was found damaged,
   * so blobs a local store already holds are written again too.
   */
  write(tag: string, image: Image, signal?: AbortSignal, replace?: boolean): Promise<void>;
}

/** The manifest under `tag`: one request where the store reads manifests alone, else the image read whole. */
export async function readManifestView(
  store: CacheStore,
  tag: string,
  signal?: AbortSignal,
): Promise<ManifestView | undefined> {
  if (store.readManifest) return store.readManifest(tag, signal);
  const image = await store.read(tag, signal);
  if (!image) return undefined;
  return {
    annotations: image.manifest.annotations,
    layerCount: image.layers.length,
    layer: (i, diffId) => {
      const l = image.layers[i];
      if (!l || l.diffId !== diffId) throw new Error(`layer ${i} of the image under ${tag} is not ${diffId}`);
      return l;
    },
  };
}

/** OCI's tag grammar. */
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * A tag a local store turns into a file or directory name. Tags are kiln's own keys, but some carry digests
 * from images (a header copy's, the layer's diffID): anything outside the tag grammar is refused, so no
 * tag can name a path outside the store.
 */
export function localTag(tag: string): string {
  if (!TAG.test(tag))
    throw new KilnError("CACHE_BAD_TAG", `cache tag ${JSON.stringify(tag.slice(0, 100))} is not a tag`);
  return tag;
}
