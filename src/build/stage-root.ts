import { chmodSync, lchownSync, lstatSync, lutimesSync, renameSync } from "node:fs";
import { lstat, mkdir, readdir, readFile, rm, statfs, writeFile } from "node:fs/promises";
import path from "node:path";
import type { HeaderCapture } from "../cache/index.js";
import { hasCode, KilnError } from "../common/errors.js";
import {
  FileIndex,
  indexEntryFromStat,
  LayerStore,
  mountStoreOverlay,
  mountsUnder,
  overlayOptionsFit,
  dropIgnored,
  unmountStoreOverlay,
  type ColumnarIndex,
  type IgnoreList,
  type StoredLayer,
  type StoreOverlay,
} from "../fs/index.js";
import type { Layer } from "../image/types.js";
import { findHelper, spreadSubdirectories } from "../run/index.js";
import { applyCaptured } from "./apply-captured.js";
import { cleanRoot } from "./clean-root.js";
import type { Reporter } from "./events.js";
import { lazyExtractProgress, withExtractProgress } from "./extract-progress.js";
import { stackPreparer } from "./store-stacks.js";
import { pidAlive } from "../common/pid-alive.js";
import { retryPolicy, retryWait, type RetryPolicy } from "./retry.js";

/** How stage roots use the persistent layer store (`--layer-store`). */
export interface StageRootStore {
  store: LayerStore;
  /**
   * The kiln-exec helper when stage roots may be overlay mounts of stored layers (root, mount
   * namespaces, overlay snapshots); undefined: the root is extracted as without the store.
   */
  mountHelper: () => Promise<string | undefined>;
}

/** Errors of the store that must fail the build instead of falling back to plain extraction. */
const FATAL_STORE_ERRORS = ["LAYER_STORE_DIGEST", "LAYER_UNSAFE", "INTERRUPTED"];

/**
 * The materialised root filesystem of one stage: a directory under kiln's state dir plus the index
 * of everything in it. Created lazily — a stage whose steps never touch the filesystem never
 * downloads or extracts its base layers. Concurrent `ensure` calls share one extraction. With a
 * layer store and overlay support the root is an overlay mount of the stored layer trees (no
 * extraction, no copying on a hit) whose index is rebuilt from the stored indexes.
 */
export class StageRoot {
  readonly dir: string;
  #index = new FileIndex();
  private ready = false;
  private pending: Promise<void> | undefined;
  private readonly extractRetry: RetryPolicy;
  private readonly inPlace: IgnoreList | undefined;
  private readonly store: StageRootStore | undefined;
  /** The helper that mounted this root (set while it is an overlay mount). */
  #mountedBy: string | undefined;
  /** The overlay the root is mounted as (set with `#mountedBy`); RUN uppers stacked onto it are lowers. */
  #overlay: StoreOverlay | undefined;
  /** Step uppers stacked so far (names their directories under `<dir>.store/l`). */
  #stacked = 0;

  /**
   * `extractRetry`: how often a failed extraction is retried from scratch (`--image-fs-extract-retry`), and
   * the wait before each retry.
   * `inPlace`: the root is a live filesystem (the in-place back-end's "/"): instead of deleting the
   * directory, extraction first cleans it except what this ignore list protects.
   * `store`: the layer store to mount the root from (never used in place).
   */
  constructor(dir: string, extractRetry = retryPolicy(0), inPlace?: IgnoreList, store?: StageRootStore) {
    this.dir = dir;
    this.extractRetry = extractRetry;
    this.inPlace = inPlace;
    this.store = inPlace ? undefined : store;
  }

  /** Everything in the root (kept up to date by the steps). */
  get index(): FileIndex {
    return this.#index;
  }

  get materialized(): boolean {
    return this.ready;
  }

  /** True while the root is an overlay mount of stored layers. */
  get mounted(): boolean {
    return this.#mountedBy !== undefined;
  }

  /**
   * Extracts `layers` (base first) into the root if that has not happened yet. `capture`: where the
   * headers of a layer extracted whole go (the cache's header copies).
   */
  ensure(
    layers: readonly Layer[],
    ignore: IgnoreList | undefined,
    report: Reporter,
    stage: number,
    signal?: AbortSignal,
    capture?: (layer: Layer) => HeaderCapture | undefined,
  ): Promise<void> {
    if (this.ready) return Promise.resolve();
    this.pending ??= this.materialize(layers, ignore, report, stage, signal, capture).then(
      () => {
        this.ready = true;
      },
      (e: unknown) => {
        this.pending = undefined;
        throw e;
      },
    );
    return this.pending;
  }

  private async materialize(
    layers: readonly Layer[],
    ignore: IgnoreList | undefined,
    report: Reporter,
    stage: number,
    signal?: AbortSignal,
    capture?: (layer: Layer) => HeaderCapture | undefined,
  ): Promise<void> {
    const helper = this.store && layers.length > 0 ? await this.store.mountHelper() : undefined;
    if (this.store && helper !== undefined) {
      try {
        await this.mountFromStore(this.store.store, helper, layers, ignore, report, stage, signal);
        return;
      } catch (e) {
        await this.unmount().catch(() => undefined);
        if (signal?.aborted || FATAL_STORE_ERRORS.some((c) => hasCode(e, c))) throw e;
        report({
          kind: "warning",
          code: "LAYER_STORE_UNUSED",
          message: `stage ${stage}: root not mounted from the layer store (${e instanceof Error ? e.message : String(e)}); extracting it instead`,
        });
      }
    } else if (this.store && layers.length > 0) {
      report({
        kind: "debug",
        message: `stage ${stage}: layer store not used for the root (overlay mounts are not available here); extracting`,
      });
    }
    await this.extract(layers, ignore, report, stage, signal, capture);
  }

  /** Leases every layer from the store (extracting misses into it) and mounts their overlay at `dir`. */
  private async mountFromStore(
    store: LayerStore,
    helper: string,
    layers: readonly Layer[],
    ignore: IgnoreList | undefined,
    report: Reporter,
    stage: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const t0 = Date.now();
    const entries: StoredLayer[] = [];
    let stack: ColumnarIndex | undefined;
    for (let attempt = 0; stack === undefined; attempt++) {
      entries.length = 0;
      for (const layer of layers) {
        signal?.throwIfAborted(); // a hit ignores the signal: no new lease once the build stopped
        const progress = lazyExtractProgress(report, layer, stage, store.layersDir, () =>
          layer.openUncompressed(signal),
        );
        const e = await store.acquire(layer.diffId, progress.open, signal).catch((err: unknown) => {
          progress.end("failed");
          throw err;
        });
        progress.end("done");
        for (const s of e.skipped)
          report({ kind: "warning", code: "EXTRACT_SKIPPED", message: `${s.path}: ${s.reason}` });
        entries.push(e);
      }
      try {
        stack = await store.stackIndex(entries);
      } catch (e) {
        // A layer's stored index was damaged: the store deleted that entry; acquiring again extracts it.
        if (attempt > 0 || !hasCode(e, "LAYER_STORE_DAMAGED")) throw e;
      }
    }
    const tLeased = Date.now();
    const misses = entries.filter((e) => !e.hit).length;
    const scratch = this.dir + ".store";
    const o: StoreOverlay = {
      base: store.layersDir,
      lowers: entries.map((e) => e.relTree).reverse(),
      upper: path.join(scratch, "upper"),
      work: path.join(scratch, "work"),
      target: this.dir,
    };
    if (!overlayOptionsFit(o)) {
      throw new KilnError("LAYER_STORE_MOUNT", `${layers.length} layers do not fit in one overlay mount`);
    }
    await rm(scratch, { recursive: true, force: true });
    await rm(this.dir, { recursive: true, force: true });
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    await mkdir(o.upper, { recursive: true, mode: 0o755 });
    await mkdir(o.work, { recursive: true, mode: 0o700 });
    // A root extracted in the background (a RUN starts it before it needs it) may outlive a failing
    // build: once the build is stopped, the tidy-up may already have unmounted everything under the
    // build dir, so nothing is mounted then, and a mount that lands after the stop is taken down here.
    signal?.throwIfAborted();
    await mountStoreOverlay(helper, o);
    this.#mountedBy = helper;
    this.#overlay = o;
    signal?.throwIfAborted(); // the caller unmounts (ensure's catch)
    const dev = Number((await lstat(this.dir, { bigint: true })).dev);
    // The stack's merged index (one verified load; built and stored on first use) read lazily.
    const index = FileIndex.fromBase(stack.withDev(dev));
    if (ignore !== undefined) dropIgnored(index, ignore);
    const fixups = stack.fixups.filter(([p]) => index.has(p));
    // Directories a layer only implied keep the lower layer's metadata, as extraction does.
    // Owner and mode first (copying every such directory up), then times deepest first, then re-read.
    const fix = [...fixups].sort((a, b) => b[0].length - a[0].length);
    for (const [p, e] of fix) {
      lchownSync(path.join(this.dir, p), e.uid, e.gid);
      chmodSync(path.join(this.dir, p), e.mode);
    }
    for (const [p, e] of fix) {
      const mtime = Number(e.mtimeNs / 1000n) / 1e6;
      lutimesSync(path.join(this.dir, p), mtime, mtime);
    }
    for (const [p] of fix) {
      const host = path.join(this.dir, p);
      const now = await indexEntryFromStat(host, lstatSync(host, { bigint: true }));
      if (now !== undefined) index.set(p, now);
    }
    this.#index = index;
    const ms = Date.now() - t0;
    report({
      kind: "debug",
      message: `stage ${stage} root: layers leased in ${tLeased - t0} ms, mounted and indexed (${index.size} paths) in ${Date.now() - tLeased} ms`,
    });
    report({
      kind: "info",
      message: `Layer store ${store.dir}: ${entries.length - misses} of ${entries.length} layers of stage ${stage} found, ${misses} extracted; root mounted in ${ms} ms`,
    });
    if (misses > 0) report({ kind: "phase", phase: "extract", ms, stage });
  }

  private async extract(
    layers: readonly Layer[],
    ignore: IgnoreList | undefined,
    report: Reporter,
    stage: number,
    signal?: AbortSignal,
    capture?: (layer: Layer) => HeaderCapture | undefined,
  ): Promise<void> {
    const t0 = Date.now();
    for (let attempt = 0; ; attempt++) {
      this.#index.deleteTree("/");
      if (this.inPlace) {
        await cleanRoot(this.dir, this.inPlace, signal);
      } else {
        await rm(this.dir, { recursive: true, force: true });
        await mkdir(this.dir, { recursive: true, mode: 0o755 });
      }
      try {
        for (const layer of layers) {
          const r = await withExtractProgress(
            report,
            layer,
            stage,
            this.dir,
            () => layer.openUncompressed(signal),
            (tar) => applyCaptured(this.dir, tar, { index: this.#index, ignore, signal }, capture?.(layer)),
          );
          for (const s of r.skipped)
            report({ kind: "warning", code: "EXTRACT_SKIPPED", message: `${s.path}: ${s.reason}` });
        }
        break;
      } catch (e) {
        if (signal?.aborted || attempt >= this.extractRetry.retries) throw e;
        const why = e instanceof Error ? e.message : String(e);
        report({
          kind: "warning",
          code: "EXTRACT_RETRY",
          message: `extracting the filesystem of stage ${stage} failed (${why}); retry ${attempt + 1} of ${this.extractRetry.retries}`,
        });
        await retryWait(this.extractRetry, attempt + 1, signal).catch(() => {
          throw e; // cancelled while waiting: the failure stands
        });
      }
    }
    report({ kind: "phase", phase: "extract", ms: Date.now() - t0, stage });
  }

  /**
   * Hands this root over to a stage built FROM it (its only user): the directory (or mount) and index
   * move without re-extraction. This root is unusable afterwards.
   * @throws KilnError INTERNAL when the root is not materialised.
   */
  handOver(): StageRoot {
    if (!this.ready) throw new KilnError("INTERNAL", `stage root ${this.dir} handed over before extraction`);
    const next = new StageRoot(this.dir, this.extractRetry, this.inPlace, this.store);
    next.#index = this.#index;
    next.#mountedBy = this.#mountedBy;
    next.#overlay = this.#overlay;
    next.#stacked = this.#stacked;
    next.ready = true;
    this.#index = new FileIndex();
    this.#mountedBy = undefined;
    this.#overlay = undefined;
    this.ready = false;
    this.pending = Promise.reject(new KilnError("INTERNAL", `stage root ${this.dir} was handed over`));
    this.pending.catch(() => {});
    return next;
  }

  /** Unmounts the root when it is an overlay mount of stored layers (its upper stays on disk). */
  async unmount(): Promise<void> {
    const helper = this.#mountedBy;
    if (helper === undefined) return;
    await unmountStoreOverlay(helper, this.dir);
    this.#mountedBy = undefined;
    this.#overlay = undefined;
  }

  /**
   * Makes a RUN step's overlay `upper` (holding overlay whiteouts and opaque dirs) the topmost lower layer
   * of this store-mounted root instead of copying it in: unmounts the root and mounts it again with lowers
   * = [upper, the previous upper (COPY results, fixups), ...previous lowers] and a fresh upper. The moved
   * directories live under `<dir>.store/l` until {@link remove}. Resolves false having changed nothing
   * when the root is not an overlay mount or the stack would not fit in the mount options.
   * @throws KilnError LAYER_STORE_MOUNT when neither the new nor the previous overlay can be mounted.
   */
  async stackUpper(upper: string, report?: Reporter): Promise<boolean> {
    const t0 = Date.now();
    const helper = this.#mountedBy;
    const prev = this.#overlay;
    if (helper === undefined || prev === undefined) return false;
    const layersDir = path.join(this.dir + ".store", "l");
    const k = this.#stacked;
    const prevUpperDir = path.join(layersDir, String(k));
    const stepDir = path.join(layersDir, String(k + 1));
    const keepPrevUpper = (await readdir(prev.upper)).length > 0;
    const lowerName = (abs: string): string => {
      const rel = path.relative(prev.base, abs);
      return rel.length < abs.length ? rel : abs;
    };
    const next: StoreOverlay = {
      ...prev,
      lowers: [lowerName(stepDir), ...(keepPrevUpper ? [lowerName(prevUpperDir)] : []), ...prev.lowers],
    };
    if (!overlayOptionsFit(next)) {
      report?.({ kind: "debug", message: `stage root ${this.dir}: too many layers to stack; copying the RUN changes` });
      return false;
    }
    const rootMeta = lstatSync(prev.upper);
    await unmountStoreOverlay(helper, this.dir);
    this.#mountedBy = undefined;
    // The overlay's root directory takes its metadata from the upper: a fresh one keeps the old one's.
    const freshDirs = async (): Promise<void> => {
      await rm(prev.work, { recursive: true, force: true });
      await mkdir(prev.upper, { mode: 0o755 });
      lchownSync(prev.upper, rootMeta.uid, rootMeta.gid);
      chmodSync(prev.upper, rootMeta.mode & 0o7777);
      lutimesSync(prev.upper, rootMeta.atime, rootMeta.mtime);
      await mkdir(prev.work, { mode: 0o700 });
    };
    const lost = (e: unknown): KilnError =>
      new KilnError(
        "LAYER_STORE_MOUNT",
        `stage root ${this.dir} lost its mount while stacking a RUN's changes onto it (${String(e)}); rerun the build`,
        { cause: e },
      );
    try {
      await mkdir(layersDir, { recursive: true, mode: 0o700 });
      renameSync(upper, stepDir);
      if (keepPrevUpper) renameSync(prev.upper, prevUpperDir);
      else await rm(prev.upper, { recursive: true, force: true });
      await freshDirs();
    } catch (e) {
      throw lost(e);
    }
    try {
      await mountStoreOverlay(helper, next);
    } catch (e) {
      // Back to the previous overlay; the caller merges the upper instead.
      try {
        await rm(prev.upper, { recursive: true, force: true });
        if (keepPrevUpper) renameSync(prevUpperDir, prev.upper);
        else await freshDirs();
        renameSync(stepDir, upper);
        await mountStoreOverlay(helper, prev);
      } catch (again) {
        throw lost(again);
      }
      this.#mountedBy = helper;
      report?.({ kind: "debug", message: `stage root ${this.dir}: stacking failed (${String(e)}); copying instead` });
      return false;
    }
    this.#mountedBy = helper;
    this.#overlay = next;
    this.#stacked = k + 2;
    report?.({
      kind: "debug",
      message: `stage root ${this.dir}: RUN changes stacked as a lower layer (${next.lowers.length} lowers) in ${Date.now() - t0} ms`,
    });
    return true;
  }

  /** Deletes the root from disk (in place: everything not ignored); unmounts it first. */
  async remove(): Promise<void> {
    this.ready = false;
    this.pending = undefined;
    if (this.inPlace) {
      await cleanRoot(this.dir, this.inPlace);
      return;
    }
    await this.unmount();
    await rm(this.dir, { recursive: true, force: true });
    await rm(this.dir + ".store", { recursive: true, force: true });
  }
}

/**
 * Unmounts every mount at or below `dir` (deepest first) with the kiln-exec `helper`: stage roots
 * mounted from the layer store when a build ends, fails or was aborted.
 */
export async function unmountAllUnder(dir: string, helper: string): Promise<void> {
  for (const m of await mountsUnder(dir)) await unmountStoreOverlay(helper, m).catch(() => undefined);
}

/** The layer store as one build uses it: stage roots mount from it; `close` ends the build's use. */
export interface BuildLayerStore extends StageRootStore {
  /**
   * Stores a layer this build produced (a step that missed the layer cache), in the background, when
   * stage roots mount from the store: a later build that gets it from the cache then mounts it instead of
   * downloading and extracting it. The entry is extracted from the layer's own tar, exactly as a pulled
   * copy would be. Failures are warnings.
   *
   * `stack`: the layers of the stage's image up to and including `layer` (base first). Once they are
   * stored, their stack index is prepared in the background, one stack at a time
   * ({@link stackPreparer}): a later build that gets them from the cache and misses the next step
   * mounts exactly that root, and then loads the stack index instead of building it.
   */
  publish(layer: Layer, stack: readonly Layer[], signal?: AbortSignal): void;
  /**
   * Waits for published layers and prepared stack indexes, unmounts every stage root under the
   * build's run dir, ends the leases.
   */
  close(): Promise<void>;
}

/** overlayfs's statfs magic: a store on overlayfs cannot be the lower of two more overlay levels. */
const OVERLAYFS_MAGIC = 0x794c7630;

/**
 * Opens the layer store for a build whose scratch directory is `runDir` (under `stateDir`): removes
 * store mounts that crashed builds left under `stateDir` (their `kiln.pid` names a dead process), and
 * decides lazily whether stage roots can be overlay mounts: `overlaySnapshots()` (RUN uses the overlay
 * snapshotter, hence root with mount namespaces), a store not itself on overlayfs, and the kiln-exec
 * helper.
 */
export async function openBuildLayerStore(
  settings: { dir: string; maxBytes: number },
  stateDir: string,
  runDir: string,
  report: Reporter,
  overlaySnapshots: () => Promise<boolean>,
): Promise<BuildLayerStore> {
  const store = await LayerStore.open(settings.dir, {
    maxBytes: settings.maxBytes,
    onNote: (message) => report({ kind: "info", message }),
  });
  // Entries are extracted in the store's tmp dir: spread its subdirectories over ext4 block groups as
  // the state dir's are (an entry evicted a minute ago must not slow the next extraction down).
  const spread = spreadSubdirectories(store.tmpDir);
  const helper = findHelper();
  try {
    await writeFile(path.join(runDir, "kiln.pid"), String(process.pid));
    if (helper !== undefined) await cleanStaleMounts(stateDir, helper);
  } catch (e) {
    await spread;
    await store.release(); // the build's use of the store ends here: no lease left behind
    throw e;
  }
  await spread; // never throws
  let decided: Promise<string | undefined> | undefined;
  const mountHelper = (): Promise<string | undefined> =>
    (decided ??= (async () => {
      if (helper === undefined || process.getuid?.() !== 0) return undefined;
      try {
        if (!(await overlaySnapshots())) return undefined;
        if ((await statfs(store.dir)).type === OVERLAYFS_MAGIC) return undefined;
      } catch {
        return undefined;
      }
      return helper;
    })());
  const publishing: Promise<void>[] = [];
  const stacks = stackPreparer(store, report);
  return {
    store,
    mountHelper,
    publish(layer, stack, signal) {
      const t0 = Date.now();
      const p = (async () => {
        if ((await mountHelper()) === undefined) return; // stored layers would only be extracted again
        const e = await store.acquire(layer.diffId, () => layer.openUncompressed(signal), signal);
        stacks.stored(e);
        if (!e.hit)
          report({
            kind: "debug",
            message: `layer store: stored the produced layer ${layer.diffId} (${e.bytes} bytes on disk) in ${Date.now() - t0} ms`,
          });
      })().catch((err: unknown) => {
        report({
          kind: "warning",
          code: "LAYER_STORE_PUBLISH",
          message: `layer store ${store.dir}: could not store the produced layer ${layer.diffId}: ${String(err)}`,
        });
      });
      publishing.push(p);
      // After every layer this build published so far: the stack's produced layers are among them.
      const ready = Promise.all(publishing).then(async () => (await mountHelper()) !== undefined);
      stacks.prepare(stack, ready, signal);
    },
    async close() {
      await Promise.all(publishing);
      await stacks.settled();
      if (decided !== undefined) {
        const h = await decided;
        if (h !== undefined) await unmountAllUnder(runDir, h);
      }
      await store.release();
    },
  };
}

/** Unmounts (and deletes) the store mounts of build dirs under `stateDir` whose owner process is gone. */
async function cleanStaleMounts(stateDir: string, helper: string): Promise<void> {
  const state = path.resolve(stateDir);
  const dead = new Set<string>();
  for (const m of await mountsUnder(state)) {
    const rel = path.relative(state, m).split(path.sep);
    if (rel.length < 2 || !rel[0]?.startsWith("build-")) continue;
    const buildDir = path.join(state, rel[0]);
    const owner = Number(await readFile(path.join(buildDir, "kiln.pid"), "utf8").catch(() => "0"));
    if (owner > 0 && pidAlive(owner)) continue;
    await unmountStoreOverlay(helper, m).catch(() => undefined);
    dead.add(buildDir);
  }
  for (const d of dead) await rm(d, { recursive: true, force: true }).catch(() => undefined);
}
