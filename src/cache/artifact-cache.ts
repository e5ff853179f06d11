import { errorMessage } from "../common/errors.js";
import type { Digest, Layer, Platform } from "../image/index.js";
import { gzipLayer } from "./artifact.js";
import {
  headerCopyDiffId,
  headerCopyImage,
  headerCopyTag,
  headerCopyWorthIt,
  HeaderCopyWriter,
  type HeaderCapture,
} from "./header-copy.js";
import {
  MAX_SKELETON_RECORD_BYTES,
  skeletonRecordDiffId,
  skeletonRecordImage,
  skeletonRecordTag,
} from "./skeleton-records.js";
import { readManifestView, type CacheStore, type ManifestView } from "./store.js";

/** Options of an {@link ArtifactCache}. */
export interface ArtifactCacheOptions {
  store: CacheStore;
  platform: Platform;
  /** Write artifacts (false with `--no-push-cache`). */
  write: boolean;
  /** Receives failures of background writes and of reads; they never fail the build. */
  onWarning: (message: string) => void;
}

/**
 * The artifacts one build reads from and writes to the cache beside kaniko's entries (see artifact.ts):
 * header copies of large layers (header-copy.ts) and skeleton records (skeleton-records.ts). Both are keyed
 * by content, read at most once per build, written in the background, and written over when this build
 * found them unusable. A failed read or write is a warning. Holds no global state; one instance per build.
 */
export class ArtifactCache {
  private readonly o: ArtifactCacheOptions;
  private readonly pending: Promise<void>[] = [];
  /** Header copies looked up in this build, by source diffID. */
  private readonly headerCopies = new Map<Digest, Promise<Layer | undefined>>();
  /** Source diffIDs whose header copy this build captured (or is capturing). */
  private readonly captured = new Set<Digest>();
  /** Source diffIDs whose header copy this build found unusable: written over, blobs included. */
  private readonly badCopies = new Set<Digest>();
  /** Skeleton record tags this build found unusable: written over without looking. */
  private readonly badRecords = new Set<string>();

  constructor(o: ArtifactCacheOptions) {
    this.o = o;
  }

  /** Where artifacts are read and written. */
  get description(): string {
    return this.o.store.description;
  }

  /** The one layer of the artifact under `tag` when `check` accepts its manifest (answering the layer's diffID). */
  private async artifactLayer(
    tag: string,
    check: (view: ManifestView | undefined) => Digest | undefined,
    signal?: AbortSignal,
  ): Promise<Layer | undefined> {
    const view = await readManifestView(this.o.store, tag, signal);
    const diffId = check(view);
    return view && diffId ? view.layer(0, diffId) : undefined;
  }

  /**
   * The header copy of `layer` in the cache, read at most once per build; undefined when there is none, the
   * layer is too small to have one, or the read failed (a warning).
   */
  headerCopy(layer: Layer, signal?: AbortSignal): Promise<Layer | undefined> {
    if (!headerCopyWorthIt(layer.size)) return Promise.resolve(undefined);
    let p = this.headerCopies.get(layer.diffId);
    if (!p) {
      const tag = headerCopyTag(layer.diffId);
      p = this.artifactLayer(tag, (view) => headerCopyDiffId(view, layer.diffId), signal).catch((e: unknown) => {
        this.o.onWarning(`reading header copy ${this.o.store.description}:${tag} failed: ${errorMessage(e)}`);
        return undefined;
      });
      this.headerCopies.set(layer.diffId, p);
    }
    return p;
  }

  /**
   * Forgets the header copy of `layer` read in this build, which turned out unusable (a corrupt blob): a
   * copy captured later in the build replaces it.
   */
  headerCopyUnusable(layer: Layer): void {
    this.headerCopies.set(layer.diffId, Promise.resolve(undefined));
    this.badCopies.add(layer.diffId);
  }

  /**
   * Captures the header copy of `layer` while an extraction or a skeleton reads it whole; undefined when
   * the cache is not written, the layer is too small, or this build captured it already. `end(true)` after
   * the last entry stores the copy in the background, unless it is not worth keeping or the cache holds
   * one already; `end(false)` drops it.
   */
  captureHeaders(layer: Layer, signal?: AbortSignal): HeaderCapture | undefined {
    if (!this.o.write || !headerCopyWorthIt(layer.size) || this.captured.has(layer.diffId)) return undefined;
    this.captured.add(layer.diffId);
    const writer = new HeaderCopyWriter(layer);
    return {
      add: (h) => writer.add(h),
      end: (ok) => {
        if (!ok) {
          writer.abort();
          return;
        }
        const tag = headerCopyTag(layer.diffId);
        this.background(`writing header copy ${this.o.store.description}:${tag}`, async () => {
          const copy = await writer.finish();
          if (!copy || (await this.headerCopy(layer, signal))) return;
          const image = headerCopyImage(layer.diffId, copy, this.o.platform);
          await this.o.store.write(tag, image, signal, this.badCopies.has(layer.diffId));
        });
      },
    };
  }

  /**
   * The skeleton record stored for the filesystem with chain key `key`, or undefined: none, too large, or
   * the read failed (a warning; the record is then written over).
   */
  async skeletonRecord(key: string, signal?: AbortSignal): Promise<Buffer | undefined> {
    const tag = skeletonRecordTag(key);
    try {
      const layer = await this.artifactLayer(tag, (view) => skeletonRecordDiffId(view, key), signal);
      if (!layer) return undefined;
      const chunks: Buffer[] = [];
      let bytes = 0;
      for await (const c of await layer.openUncompressed(signal)) {
        bytes += (c as Buffer).length;
        if (bytes > MAX_SKELETON_RECORD_BYTES) return undefined;
        chunks.push(c as Buffer);
      }
      return Buffer.concat(chunks);
    } catch (e) {
      if (signal?.aborted) throw e;
      this.badRecords.add(tag);
      this.o.onWarning(`reading skeleton record ${this.o.store.description}:${tag} failed: ${errorMessage(e)}`);
      return undefined;
    }
  }

  /**
   * Whether a skeleton record for `key` needs writing: the cache is written, and it holds no usable record
   * for `key` (one manifest request, unless this build found the record unusable already).
   */
  async skeletonRecordWanted(key: string, signal?: AbortSignal): Promise<boolean> {
    if (!this.o.write) return false;
    const tag = skeletonRecordTag(key);
    if (this.badRecords.has(tag)) return true;
    try {
      return skeletonRecordDiffId(await readManifestView(this.o.store, tag, signal), key) === undefined;
    } catch (e) {
      if (signal?.aborted) throw e;
      return false; // the cache does not answer: writing would most likely fail as well
    }
  }

  /** Marks the record read for `key` unusable (it did not decode or lay out): it is written over. */
  skeletonRecordUnusable(key: string): void {
    this.badRecords.add(skeletonRecordTag(key));
  }

  /**
   * Stores the skeleton record for the filesystem with chain key `key` in the background. `encode` runs
   * now (the caller's index changes right after) and only when the cache is written.
   */
  putSkeletonRecord(key: string, encode: () => Buffer, signal?: AbortSignal): void {
    if (!this.o.write) return;
    const data = encode();
    if (data.length > MAX_SKELETON_RECORD_BYTES) return;
    const tag = skeletonRecordTag(key);
    this.background(`writing skeleton record ${this.o.store.description}:${tag}`, async () => {
      const image = skeletonRecordImage(key, await gzipLayer(data), this.o.platform);
      await this.o.store.write(tag, image, signal, this.badRecords.has(tag));
    });
  }

  /** Waits for every background write (failures were already reported as warnings). */
  async flush(): Promise<void> {
    while (this.pending.length > 0) await Promise.all(this.pending.splice(0));
  }

  /** Runs `write` in the background; its failure is a warning starting with `what`. */
  private background(what: string, write: () => Promise<void>): void {
    this.pending.push(
      write().catch((e: unknown) => {
        this.o.onWarning(`${what} failed: ${errorMessage(e)}`);
      }),
    );
  }
}
