import type { Layer, Platform } from "../image/index.js";
import {
  entryFromImage,
  entryImage,
  isCacheableLayerType,
  type CacheEntry,
  type CacheRecord,
  type EntryHead,
} from "./entry.js";
import { explainDifference } from "./explain.js";
import type { CacheStore } from "./store.js";

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
 * recorded for the same step position. Holds no global state; one instance per build.
 */
export class LayerCache {
  private readonly o: LayerCacheOptions;
  private readonly pending: Promise<void>[] = [];
  /** Latest entry per step position, read at most once per build (see {@link LayerCache.prefetch}). */
  private readonly latest = new Map<string, Promise<EntryHead | undefined>>();

  constructor(o: LayerCacheOptions) {
    this.o = o;
  }

  /** Where entries are read and written. */
  get description(): string {
    return this.o.store.description;
  }

  /**
   * Starts reading the latest entry recorded for each step position in `slots`, all in parallel, so
   * that {@link LayerCache.lookup} of a key that the position's latest entry carries (the usual case
   * on an unchanged rebuild) and {@link LayerCache.explain} need no further round trip. A step's key
   * depends on the result of the step before it, so keys cannot be probed ahead of time; positions can.
   */
  prefetch(slots: readonly string[], signal?: AbortSignal): void {
    for (const slot of slots) void this.latestEntry(slot, signal);
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
      const latest = (await this.latestEntry(slot, signal))?.entry;
      if (signal?.aborted) throw signal.reason;
      const found = latest?.record.key === key ? this.check(key, latest) : undefined;
      if (found?.hit) return found;
    }
    let head;
    try {
      head = await this.readEntry(key, signal);
    } catch (e) {
      if (signal?.aborted) throw e;
      this.o.onWarning(`cache lookup ${this.o.store.description}:${key} failed: ${message(e)}`);
      return { hit: false, reason: "error" };
    }
    if (!head) return { hit: false, reason: "absent" };
    return this.check(key, head.entry);
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
      // Large input lists stay in the entry's config: read it (a miss costs this request, a hit never).
      const img = await this.o.store.read(slotTag(slot), signal).catch(() => undefined);
      const full = img ? entryFromImage(img) : undefined;
      if (!full || full.record.key !== prev.entry.record.key) return undefined;
      recorded = full.record.inputs;
    }
    return explainDifference(inputs, recorded);
  }

  /** Stores a step result in the background (entry under its key, plus the slot pointer). */
  put(record: CacheRecord, layer: Layer | undefined, signal?: AbortSignal): void {
    if (!this.o.write) return;
    const image = entryImage({ layer, record, created: this.o.now() }, this.o.platform);
    const p = (async () => {
      await this.o.store.write(record.key, image, signal);
      await this.o.store.write(slotTag(record.slot), image, signal);
    })().catch((e: unknown) => {
      this.o.onWarning(`writing cache entry ${this.o.store.description}:${record.key} failed: ${message(e)}`);
    });
    this.pending.push(p);
  }

  /** Waits for every background write (failures were already reported as warnings). */
  async flush(): Promise<void> {
    while (this.pending.length > 0) await Promise.all(this.pending.splice(0));
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
