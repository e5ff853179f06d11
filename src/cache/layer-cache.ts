import { errorMessage } from "../common/errors.js";
import type { Layer, Platform } from "../image/index.js";
import {
  chainFromAnnotations,
  chainImage,
  chainTag,
  MAX_CHAIN_MANIFEST_BYTES,
  sameEntry,
  type ChainEntries,
} from "./chain.js";
import {
  entryFromImage,
  entryImage,
  isCacheableLayerType,
  type CacheEntry,
  type CacheRecord,
  type EntryHead,
} from "./entry.js";
import { ArtifactCache } from "./artifact-cache.js";
import { explainDifference } from "./explain.js";
import { readManifestView, type CacheStore } from "./store.js";

/** Options of a {@link LayerCache}. */
export interface LayerCacheOptions {
  store: CacheStore;
  platform: Platform;
  /** Entries older than this (config `created` + ttl) are misses (`--cache-ttl`). */
  ttlMs: number;
  /** Write new entries (false with `--no-push-cache`). */
  write: boolean;
  now: () => Date;
  /** Receives failures of background writes and lookups; they never fail the build. */
  onWarning: (message: string) => void;
}

/** Result of a cache lookup. */
export type Lookup =
  { hit: true; entry: CacheEntry } | { hit: false; reason: "absent" | "expired" | "unusable" | "error" };

/** Tag of the pointer to the latest entry written for a step position. */
export function slotTag(slot: string): string {
  return `slot-${slot.slice(0, 64)}`;
}

/**
 * The layer cache of one build over a {@link CacheStore}: lookups by composite key, background
 * writes (a failed write is a warning), TTL, and miss explanations against the latest entry
 * recorded for the same step position. Where the store keeps them, the latest entries of a stage's
 * positions come from one chain record (see chain.ts), read at build start and rewritten only when
 * the stage ended with other entries. Holds no global state; one instance per build.
 */
export class LayerCache {
  private readonly o: LayerCacheOptions;
  private readonly pending: Promise<void>[] = [];
  /** Latest entry per step position, read at most once per build (see {@link LayerCache.prefetch}). */
  private readonly latest = new Map<string, Promise<EntryHead | undefined>>();
  /**
   * Chain records by stage (keyed by the stage's slot list), each with its tag: the tag is hashed and
   * the record read at most once per build, however often a stage's positions are prefetched.
   */
  private readonly chains = new Map<string, StageChain>();
  /** The entry each step position ended with in this build (a hit or a new entry): the next chain. */
  private readonly used = new Map<string, EntryHead>();
  /** Header copies and skeleton records (see artifact-cache.ts), over the same store. */
  readonly artifacts: ArtifactCache;

  constructor(o: LayerCacheOptions) {
    this.o = o;
    this.artifacts = new ArtifactCache({
      store: o.store,
      platform: o.platform,
      write: o.write,
      onWarning: o.onWarning,
    });
  }

  /** Where entries are read and written. */
  get description(): string {
    return this.o.store.description;
  }

  /**
   * Starts reading the latest entry recorded for each step position in `slots` (one stage's, in
   * order), so that {@link LayerCache.lookup} of a key that the position's latest entry carries (the
   * usual case on an unchanged rebuild) and {@link LayerCache.explain} need no further round trip. A
   * step's key depends on the result of the step before it, so keys cannot be probed ahead of time;
   * positions can. Where the store keeps chain records, the stage's chain is read first (one request)
   * and only the positions it does not cover are read one by one, in parallel.
   */
  prefetch(slots: readonly string[], signal?: AbortSignal): void {
    if (!this.o.store.keepsChains || slots.length === 0) {
      for (const slot of slots) void this.latestEntry(slot, signal);
      return;
    }
    const chain = this.chain(slots, signal).entries;
    for (const slot of slots) {
      if (this.latest.has(slot)) continue;
      const p = chain
        .then((c) => (c?.has(slot) ? c.get(slot) : this.readEntry(slotTag(slot), signal)))
        .catch(() => undefined);
      this.latest.set(slot, p);
    }
  }

  /** The chain record of the stage whose positions are `slots` (memoized; read failures count as "none"). */
  private chain(slots: readonly string[], signal?: AbortSignal): StageChain {
    const id = JSON.stringify(slots);
    let c = this.chains.get(id);
    if (!c) {
      const tag = chainTag(slots, this.o.platform);
      c = { tag, entries: this.readChain(tag, signal).catch(() => undefined) };
      this.chains.set(id, c);
    }
    return c;
  }

  private async readChain(tag: string, signal?: AbortSignal): Promise<ChainEntries | undefined> {
    const view = await readManifestView(this.o.store, tag, signal);
    return view && chainFromAnnotations(view.annotations, view.layerCount, view.layer);
  }

  /** The latest entry written for `slot` (memoized; read failures count as "none"). */
  private latestEntry(slot: string, signal?: AbortSignal): Promise<EntryHead | undefined> {
    let p = this.latest.get(slot);
    if (!p) {
      p = this.readEntry(slotTag(slot), signal).catch(() => undefined);
      this.latest.set(slot, p);
    }
    return p;
  }

  /** Reads the entry under `tag`: one manifest request when the store and the entry allow it, else the whole image. */
  private async readEntry(tag: string, signal?: AbortSignal): Promise<EntryHead | undefined> {
    if (this.o.store.readHead) return this.o.store.readHead(tag, signal);
    const img = await this.o.store.read(tag, signal);
    const entry = img ? entryFromImage(img) : undefined;
    return entry ? { entry, inputsComplete: true } : undefined;
  }

  /** A hit when `entry` is a usable entry for `key` (its record names the key, its layer type is known, not expired). */
  private check(key: string, entry: CacheEntry | undefined): Lookup {
    if (!entry || entry.record.key !== key) return { hit: false, reason: "unusable" };
    if (entry.layer && !isCacheableLayerType(entry.layer.mediaType)) return { hit: false, reason: "unusable" };
    if (entry.created.getTime() + this.o.ttlMs <= this.o.now().getTime()) return { hit: false, reason: "expired" };
    return { hit: true, entry };
  }

  /**
   * Looks an entry up by key. With `slot`, the latest entry of that step position is tried first (one
   * read per build, usually prefetched); only when it is not the entry for `key` is the key itself read.
   * Lookup failures are warnings and count as misses.
   */
  async lookup(key: string, signal?: AbortSignal, slot?: string): Promise<Lookup> {
    if (slot !== undefined) {
      const head = await this.latestEntry(slot, signal);
      if (signal?.aborted) throw signal.reason;
      const found = head?.entry.record.key === key ? this.check(key, head.entry) : undefined;
      if (found?.hit) {
        this.used.set(slot, head as EntryHead);
        return found;
      }
    }
    let head;
    try {
      head = await this.readEntry(key, signal);
    } catch (e) {
      if (signal?.aborted) throw e;
      this.o.onWarning(`cache lookup ${this.o.store.description}:${key} failed: ${errorMessage(e)}`);
      return { hit: false, reason: "error" };
    }
    if (!head) return { hit: false, reason: "absent" };
    const found = this.check(key, head.entry);
    // The same key may have been recorded at another position (e.g. an identical step elsewhere).
    if (found.hit && slot !== undefined) {
      this.used.set(slot, { ...head, entry: { ...head.entry, record: { ...head.entry.record, slot } } });
    }
    return found;
  }

  /**
   * Explains a miss: compares `inputs` with those recorded by the latest entry written for `slot`.
   * Returns undefined when nothing was ever recorded for that position.
   */
  async explain(
    slot: string,
    inputs: Readonly<Record<string, string>>,
    signal?: AbortSignal,
  ): Promise<string[] | undefined> {
    const prev = await this.latestEntry(slot, signal);
    if (!prev) return undefined;
    let recorded = prev.entry.record.inputs;
    if (!prev.inputsComplete) {
      // Large input lists stay in the entry's config: read it under its key (a miss costs this
      // request, a hit never).
      const img = await this.o.store.read(prev.entry.record.key, signal).catch(() => undefined);
      const full = img ? entryFromImage(img) : undefined;
      if (!full || full.record.key !== prev.entry.record.key) return undefined;
      recorded = full.record.inputs;
    }
    return explainDifference(inputs, recorded);
  }

  /**
   * Stores a step result in the background (entry under its key, plus the slot pointer). `created`: when
   * the step's layer was made (its history time, which a hit reuses); default now.
   */
  put(record: CacheRecord, layer: Layer | undefined, signal?: AbortSignal, created?: Date): void {
    if (!this.o.write) return;
    const entry = { layer, record, created: created ?? this.o.now() };
    this.used.set(record.slot, { entry, inputsComplete: true });
    const image = entryImage(entry, this.o.platform);
    const p = (async () => {
      await this.o.store.write(record.key, image, signal);
      await this.o.store.write(slotTag(record.slot), image, signal);
    })().catch((e: unknown) => {
      this.o.onWarning(`writing cache entry ${this.o.store.description}:${record.key} failed: ${errorMessage(e)}`);
    });
    this.pending.push(p);
  }

  /**
   * Records, after a stage's steps, the entry each of its positions `slots` (as given to
   * {@link LayerCache.prefetch}) ended with: in the background, the stage's chain record is written
   * unless the one read at build start already names exactly these entries (a fully cached rebuild
   * writes nothing). Hits keep their entries' own creation times, so `--cache-ttl` still counts from
   * when each step was built. Positions not looked up in this build are recorded without an entry.
   */
  commitStage(slots: readonly string[], signal?: AbortSignal): void {
    if (!this.o.write || !this.o.store.keepsChains || slots.length === 0) return;
    const entries = new Map<string, EntryHead | undefined>(slots.map((s) => [s, this.used.get(s)]));
    const earlier = [...this.pending];
    const { tag, entries: read } = this.chain(slots, signal);
    const p = (async () => {
      const chain = await read;
      if (chain && slots.every((s) => chain.has(s) && sameEntry(chain.get(s), entries.get(s)))) return;
      const image = chainImage(slots, entries, this.o.platform);
      if (image.rawManifest.length > MAX_CHAIN_MANIFEST_BYTES) return;
      // The stage's new entries are pushed first: the chain then finds their blobs in place.
      await Promise.all(earlier);
      await this.o.store.write(tag, image, signal);
    })().catch((e: unknown) => {
      this.o.onWarning(`writing cache chain ${this.o.store.description}:${tag} failed: ${errorMessage(e)}`);
    });
    this.pending.push(p);
  }

  /** Waits for every background write, artifacts included (failures were already reported as warnings). */
  async flush(): Promise<void> {
    while (this.pending.length > 0) await Promise.all(this.pending.splice(0));
    await this.artifacts.flush();
  }
}

/** A stage's chain record: its tag and its entries as read at build start. */
interface StageChain {
  tag: string;
  entries: Promise<ChainEntries | undefined>;
}
