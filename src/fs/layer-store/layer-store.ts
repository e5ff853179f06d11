import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { appendFile, mkdir, readdir, readFile, rename, rm, rmdir, stat, unlink, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { pipeline, Transform } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import type { Readable } from "node:stream";
import { KilnError } from "../../common/errors.js";
import { applyLayer } from "../apply-layer.js";
import { FileIndex } from "../file-index.js";
import { ColumnarIndex, encodeColumnarIndex } from "./columnar-index.js";
import { indexDigest, parseLayerIndex, rebuildFileIndex, serializeLayerIndex } from "./layer-index.js";
import type { LayerIndex } from "./layer-index.js";
import { pathExists } from "../../common/path-exists.js";
import { pidAlive } from "../../common/pid-alive.js";

/** Options of {@link LayerStore.open}. */
export interface LayerStoreOptions {
  /** Size limit in bytes; after publishing an entry, least-recently-used unleased entries are evicted. */
  maxBytes: number;
  now?: () => Date;
  /** Notes about the store's upkeep (corrupted entries rebuilt, entries evicted); never errors. */
  onNote?: (message: string) => void;
}

/** One layer held by the store (leased by this {@link LayerStore} until {@link LayerStore.release}). */
export interface StoredLayer {
  readonly diffId: string;
  /** The entry directory `DIR/layers/sha256/<hex>`. */
  readonly dir: string;
  /** The unpacked layer: an overlayfs lower directory (overlay whiteouts and opaque xattrs). */
  readonly tree: string;
  /** `tree` relative to {@link LayerStore.layersDir} (short overlay mount options). */
  readonly relTree: string;
  /**
   * The layer's index, read and verified on first access (a hit does not read it).
   * @throws KilnError LAYER_STORE_DAMAGED when the stored index is damaged (see {@link LayerStore.stackIndex}).
   */
  readonly index: LayerIndex;
  /** sha256 (hex) of the entry's `index.bin`: identifies this very extraction (its inode numbers). */
  readonly indexSha256: string;
  /** Disk use of the entry (file sizes rounded up to 4 KiB blocks, plus directories and the index). */
  readonly bytes: number;
  /** True when the entry was already in the store; false when this call extracted it. */
  readonly hit: boolean;
  /** Entries the extraction skipped (see ApplyResult.skipped); empty on a hit. */
  readonly skipped: readonly { path: string; reason: string }[];
}

/** How much the store holds. */
export interface StoreUsage {
  entries: number;
  bytes: number;
}

interface Meta {
  version: 2;
  diffId: string;
  bytes: number;
  files: number;
  indexSha256: string;
  created: string;
  lastUsed: string;
}

const DIFF_ID = /^sha256:([0-9a-f]{64})$/;
/** The layer index file of an entry (see {@link serializeLayerIndex}). */
const INDEX_FILE = "index.bin";
/** Directory of stack indexes inside the entry of a stack's topmost layer. */
const STACKS_DIR = "stacks";
/** An entry's record of the sizes of its stack indexes (see {@link stackSizesBytes}). */
const STACK_SIZES = "stack-sizes";

/**
 * The bytes an entry's `stack-sizes` record counts. The record is only ever appended to (O_APPEND: the
 * lines of concurrent writers all land, none overwrites another's): one `<file name> <bytes>` line per
 * stack index written into `stacks/`, before it is written. A name written again (a damaged index
 * rebuilt) counts once, with its largest size; a malformed line (a torn write) counts nothing.
 */
function stackSizesBytes(text: string): number {
  const sizes = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^(\S+) (\d+)$/.exec(line);
    if (m?.[1] !== undefined) sizes.set(m[1], Math.max(sizes.get(m[1]) ?? 0, Number(m[2])));
  }
  let bytes = 0;
  for (const n of sizes.values()) bytes += n;
  return bytes;
}

/** `stack-sizes` lines of the stack indexes now in an entry's `stacks/` (none when it has no such dir). */
async function listStackSizes(entryDir: string): Promise<string> {
  const dir = path.join(entryDir, STACKS_DIR);
  let lines = "";
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.endsWith(".bin")) continue; // a temporary file of a writer (whose line is recorded)
    const st = await stat(path.join(dir, name)).catch(() => undefined);
    if (st !== undefined) lines += `${name} ${st.size}\n`;
  }
  return lines;
}

function code(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Pauses before reading an entry again after a missing file or an unparseable meta.json: eviction
 * renames an entry away and back (when it was leased meanwhile), so such a failure is first taken
 * for that short window and read again; only when it lasts beyond these pauses is it damage.
 */
const REREAD_DELAYS_MS: readonly number[] = [5, 20, 60];

/**
 * Whether a failure to read an entry may be the eviction window rather than damage: a file (or the
 * entry) missing, or a meta.json caught half-written by a writer that does not rename it into place.
 */
function mayBeTransient(e: unknown): boolean {
  const cause = e instanceof Error ? e.cause : undefined;
  return e instanceof SyntaxError || code(e) === "ENOENT" || code(cause) === "ENOENT";
}

/**
 * Reads and checks an entry's `meta.json` and `tree/` once.
 * @throws Error when a file is missing or unreadable (its cause the fs error), meta.json does not
 *   parse (SyntaxError) or does not describe `diffId` in the current format, or tree/ is no directory.
 */
async function readEntryMeta(dir: string, diffId: string): Promise<Meta> {
  let metaText: string;
  try {
    metaText = await readFile(path.join(dir, "meta.json"), "utf8");
  } catch (e) {
    throw new Error("meta.json is missing or unreadable", { cause: e });
  }
  const meta = JSON.parse(metaText) as Meta;
  if (meta.version !== 2 || meta.diffId !== diffId || typeof meta.indexSha256 !== "string") {
    throw new Error((meta.version as number) === 1 ? "it is in an older format" : "meta.json is invalid");
  }
  const tree = await stat(path.join(dir, "tree")).catch((e: unknown) => {
    throw new Error("tree/ is missing or unreadable", { cause: e });
  });
  if (!tree.isDirectory()) throw new Error("tree/ is not a directory");
  return meta;
}

/** The message of a damage reason (a KilnError's cause when it has one). */
function damageReason(why: unknown): string {
  const reason = why instanceof KilnError && why.cause !== undefined ? why.cause : why;
  return reason instanceof Error ? reason.message : String(reason);
}

/**
 * A persistent directory of unpacked layers keyed by diffID, shared safely by several kiln processes:
 *
 * - `layers/sha256/<hex>/` holds `tree/` (the layer alone, OCI whiteouts turned into overlay whiteouts),
 *   `index.bin` (its entries in kiln's columnar format, see {@link LayerIndex}), `meta.json` (diffID,
 *   size, file count, the index's embedded sha256, created/last-used) and, in the entry of a stack's
 *   topmost layer, `stacks/<key>.bin`: merged indexes of layer stacks ({@link LayerStore.stackIndex}),
 *   and `stack-sizes`, the record of their sizes that usage and eviction count ({@link stackSizesBytes}).
 *   Entries are extracted into `tmp/<pid>-<random>/`, verified against the diffID (sha256 of the
 *   uncompressed stream) and published by one atomic rename; when two processes extract the same layer
 *   the second rename fails and that copy is discarded.
 * - `leases/<hex>/<pid>-<random>` marks an entry in use; leases of dead processes are stale. Eviction
 *   (least recently used first, down to the size limit) skips leased entries: it renames an entry away
 *   first and puts it back when a lease appeared meanwhile. A reader that finds a file missing, or
 *   meta.json unparseable, therefore reads the entry again (briefly) before it counts as damage. Each
 *   {@link LayerStore} instance has one lease file per entry, shared by its concurrent
 *   acquire/lookup calls: it is counted per call, and removed only when no call of the instance
 *   holds the entry any more (or on {@link LayerStore.release}).
 * - An entry whose meta.json is missing, invalid or of an older format is deleted and extracted again;
 *   so is one whose index.bin does not match its recorded digest, found when the index is first read
 *   (a hit reads it lazily: {@link StoredLayer.index}). File contents are not re-hashed on each use.
 *   A damaged entry that another build (another instance or process) leases is kept, not deleted
 *   under it: the call that found the damage fails with LAYER_STORE_DAMAGED (lookup: undefined), and
 *   the entry is rebuilt once nobody else holds it.
 * - meta.json is only ever replaced by a rename of a temporary file of a unique name, so that readers
 *   never see it partly written.
 * - Leftover `tmp/` directories of dead processes are removed when a store is opened.
 *
 * The store must be shared only by processes of one pid namespace (leases name pids).
 */
export class LayerStore {
  readonly dir: string;
  /** `DIR/layers/sha256`: the parent of every entry. */
  readonly layersDir: string;
  readonly maxBytes: number;
  /** `DIR/tmp`: where entries are extracted before they are published (renamed into {@link layersDir}). */
  readonly tmpDir: string;
  readonly #tmpDir: string;
  readonly #leasesDir: string;
  readonly #leaseId = `${process.pid}-${randomBytes(6).toString("hex")}`;
  /**
   * Per entry (hex), how many calls of this instance hold it: acquire/lookup calls that leased it
   * (or are leasing it) and were not undone, until {@link release}. The lease file is shared by them.
   */
  readonly #holders = new Map<string, number>();
  /**
   * Per entry, the tail of this instance's writes and removals of its lease file: they run one at a
   * time in call order, so that a removal decided when the last holder left never lands after a later
   * call's write of the file.
   */
  readonly #leaseOps = new Map<string, Promise<void>>();
  readonly #now: () => Date;
  readonly #note: (message: string) => void;

  private constructor(dir: string, opts: LayerStoreOptions) {
    this.dir = path.resolve(dir);
    this.layersDir = path.join(this.dir, "layers", "sha256");
    this.#tmpDir = path.join(this.dir, "tmp");
    this.tmpDir = this.#tmpDir;
    this.#leasesDir = path.join(this.dir, "leases");
    this.maxBytes = opts.maxBytes;
    this.#now = opts.now ?? (() => new Date());
    this.#note = opts.onNote ?? (() => undefined);
  }

  /**
   * Opens (creating) the store at `dir` and removes what crashed processes left behind.
   * @throws KilnError LAYER_STORE when the directory cannot be created.
   */
  static async open(dir: string, opts: LayerStoreOptions): Promise<LayerStore> {
    const s = new LayerStore(dir, opts);
    try {
      for (const d of [s.layersDir, s.#tmpDir, s.#leasesDir]) await mkdir(d, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new KilnError("LAYER_STORE", `cannot create the layer store ${s.dir}: ${String(e)}; check --layer-store`, {
        cause: e,
      });
    }
    await s.cleanStale();
    return s;
  }

  /** Directory for `RUN --mount=type=cache` directories kept with the store. */
  get cacheMountsDir(): string {
    return path.join(this.dir, "cache-mounts");
  }

  /**
   * Removes tmp directories and leases of processes that no longer exist. Hidden names in `tmp/` are
   * not the store's and stay (e.g. the marker that the directory's subdirectories are spread).
   */
  async cleanStale(): Promise<void> {
    for (const name of await readdir(this.#tmpDir).catch(() => [] as string[])) {
      if (!name.startsWith(".") && !pidAlive(Number(name.split("-")[0])))
        await rm(path.join(this.#tmpDir, name), { recursive: true, force: true });
    }
    for (const hex of await readdir(this.#leasesDir).catch(() => [] as string[])) {
      await this.#liveLeases(hex);
      await rmdir(path.join(this.#leasesDir, hex)).catch(() => undefined); // only when empty
    }
  }

  /**
   * Leases the entry of `diffId` and returns it: from the store when present and intact (a hit), else
   * extracted from `open()` (the layer's uncompressed tar), verified and published (a miss). The lease
   * lasts until {@link release}.
   * A call that fails holds nothing (other calls' leases of the entry stay).
   * @throws KilnError LAYER_STORE_DIGEST when the stream's sha256 is not `diffId` (nothing is stored);
   *   LAYER_UNSAFE / LAYER_APPLY from extraction; LAYER_STORE_DAMAGED when the stored entry is damaged
   *   but another build leases it (it is not deleted under that build).
   */
  async acquire(diffId: string, open: () => Promise<Readable>, signal?: AbortSignal): Promise<StoredLayer> {
    const hex = DIFF_ID.exec(diffId)?.[1];
    if (hex === undefined)
      throw new KilnError("LAYER_STORE", `layer store: unsupported diffID ${diffId} (sha256 only)`);
    await this.#lease(hex);
    try {
      return (await this.#load(hex, diffId)) ?? (await this.#extract(hex, diffId, open, signal));
    } catch (e) {
      await this.#unlease(hex);
      throw e;
    }
  }

  /** Extracts, verifies and publishes the entry of `diffId` (leased by the caller); see {@link acquire}. */
  async #extract(
    hex: string,
    diffId: string,
    open: () => Promise<Readable>,
    signal: AbortSignal | undefined,
  ): Promise<StoredLayer> {
    const tmp = path.join(this.#tmpDir, `${this.#leaseId}-${randomBytes(4).toString("hex")}`);
    const tree = path.join(tmp, "tree");
    try {
      await mkdir(tree, { recursive: true, mode: 0o755 });
      const index = new FileIndex();
      const hash = createHash("sha256");
      const hasher = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          cb(null, chunk);
        },
      });
      pipeline(await open(), hasher, () => undefined);
      const r = await applyLayer(tree, hasher, { index, overlayWhiteouts: true, ...(signal ? { signal } : {}) });
      const got = `sha256:${hash.digest("hex")}`;
      if (got !== diffId) {
        throw new KilnError(
          "LAYER_STORE_DIGEST",
          `layer ${diffId}: its uncompressed content has digest ${got}; nothing was stored (the blob is corrupted or the image config lists a wrong diff_id)`,
        );
      }
      const info = r.overlay ?? { whiteouts: [], opaqueDirs: [], implicitDirs: [] };
      const data = serializeLayerIndex(diffId, index, info);
      let bytes = data.length;
      let files = 0;
      for (const p of index.paths()) {
        const e = index.getClean(p);
        if (e?.type === "file") {
          files++;
          bytes += Math.ceil(e.size / 4096) * 4096;
        } else if (e?.type === "dir") bytes += 4096;
      }
      const now = this.#now().toISOString();
      const meta: Meta = {
        version: 2,
        diffId,
        bytes,
        files,
        indexSha256: indexDigest(data),
        created: now,
        lastUsed: now,
      };
      await writeFile(path.join(tmp, INDEX_FILE), data);
      await writeFile(path.join(tmp, "meta.json"), JSON.stringify(meta));
      const final = path.join(this.layersDir, hex);
      try {
        await rename(tmp, final);
        await this.evict().catch(() => undefined);
      } catch (e) {
        if (code(e) !== "ENOTEMPTY" && code(e) !== "EEXIST") throw e;
        // Another process published it first: use theirs.
        await rm(tmp, { recursive: true, force: true });
        const winner = await this.#load(hex, diffId);
        if (winner) return winner;
        throw new KilnError("LAYER_STORE", `layer store ${this.dir}: entry ${diffId} vanished while it was published`);
      }
      return {
        diffId,
        dir: final,
        tree: path.join(final, "tree"),
        relTree: `${hex}/tree`,
        index: parseLayerIndex(data, diffId),
        indexSha256: meta.indexSha256,
        bytes,
        hit: false,
        skipped: r.skipped,
      };
    } catch (e) {
      await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      throw e;
    }
  }

  /**
   * Leases the entry of `diffId` when the store holds it intact, extracting nothing; undefined, and no
   * lease of this call left behind, when it does not (or `diffId` is not sha256, or the entry is
   * damaged). Only this call's hold is undone: a concurrent acquire of the same entry keeps its lease.
   */
  async lookup(diffId: string): Promise<StoredLayer | undefined> {
    const hex = DIFF_ID.exec(diffId)?.[1];
    if (hex === undefined) return undefined;
    await this.#lease(hex);
    let found: StoredLayer | undefined;
    try {
      found = await this.#load(hex, diffId);
    } catch (e) {
      await this.#unlease(hex);
      if (e instanceof KilnError && e.code === "LAYER_STORE_DAMAGED") return undefined;
      throw e;
    }
    if (found === undefined) await this.#unlease(hex);
    return found;
  }

  /**
   * The merged index of an overlay of `layers` (base first, all leased from this store): whiteouts,
   * opaque and implied directories applied as extraction applies them, `dev` 0, nothing ignored yet.
   * One layer: its own index. Several: the stack index kept in the topmost entry's `stacks/`, keyed by
   * the layers' index digests (so a re-extracted layer never matches an old stack), built and published
   * atomically on first use, verified on every load (a damaged one is rebuilt) and evicted with the entry.
   * @throws KilnError LAYER_STORE_DAMAGED when a layer's own index (needed to build the stack index) is
   *   damaged: that entry has been deleted; acquire the layers again (it is extracted anew).
   */
  async stackIndex(layers: readonly StoredLayer[]): Promise<ColumnarIndex> {
    const top = layers[layers.length - 1];
    if (top === undefined) throw new KilnError("INTERNAL", "layer store: stack index of no layers");
    if (layers.length === 1) return (await this.#indexOf(top)).columns;
    const key = createHash("sha256")
      .update(layers.map((l) => `${l.diffId}=${l.indexSha256}`).join("\n"))
      .digest("hex");
    const dir = path.join(top.dir, STACKS_DIR);
    const file = path.join(dir, `${key}.bin`);
    try {
      return ColumnarIndex.decode(await readFile(file), "stack", key);
    } catch (e) {
      if (code(e) !== "ENOENT")
        this.#note(
          `layer store: stack index ${file} is damaged (${e instanceof Error ? e.message : String(e)}); rebuilding it`,
        );
    }
    const parsed: LayerIndex[] = [];
    for (const l of layers) parsed.push(await this.#indexOf(l));
    const { index, fixups } = rebuildFileIndex(parsed, 0);
    const data = encodeColumnarIndex(index, {
      kind: "stack",
      key,
      whiteouts: [],
      opaqueDirs: [],
      implicitDirs: [],
      fixups: [...fixups],
    });
    const tmp = path.join(dir, `.tmp-${this.#leaseId}-${randomBytes(4).toString("hex")}`);
    try {
      await mkdir(dir, { recursive: true, mode: 0o755 });
      await this.#recordStackSize(top.dir, `${key}.bin`, data.length);
      await writeFile(tmp, data);
      await rename(tmp, file);
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => undefined);
      this.#note(`layer store: stack index not stored (${String(e)})`);
    }
    return ColumnarIndex.decode(data, "stack", key);
  }

  /** Ends every lease this instance holds (the entries become evictable). */
  async release(): Promise<void> {
    const held = [...this.#holders.keys()];
    this.#holders.clear();
    for (const hex of held) {
      await this.#leaseOp(hex, async () => {
        if (this.#holders.has(hex)) return; // leased again since: the file is that call's
        await unlink(path.join(this.#leasesDir, hex, this.#leaseId)).catch(() => undefined);
      });
    }
  }

  /** Number of entries and their disk use (recorded files and indexes plus the stack indexes kept in them). */
  async usage(): Promise<StoreUsage> {
    const list = await this.#list();
    return { entries: list.length, bytes: list.reduce((n, e) => n + e.bytes, 0) };
  }

  /**
   * Deletes least-recently-used entries that nobody leases until the store holds at most `maxBytes`.
   * Returns the evicted diffIDs and the bytes freed.
   */
  async evict(maxBytes = this.maxBytes): Promise<{ evicted: string[]; bytes: number }> {
    const list = await this.#list();
    let total = list.reduce((n, e) => n + e.bytes, 0);
    const out = { evicted: [] as string[], bytes: 0 };
    list.sort((a, b) => (a.lastUsed < b.lastUsed ? -1 : a.lastUsed > b.lastUsed ? 1 : 0));
    for (const e of list) {
      if (total <= maxBytes) break;
      if (this.#holders.has(e.hex) || (await this.#liveLeases(e.hex)) > 0) continue;
      const final = path.join(this.layersDir, e.hex);
      const away = path.join(this.#tmpDir, `${this.#leaseId}-evict-${e.hex.slice(0, 12)}`);
      try {
        await rename(final, away);
      } catch {
        continue; // gone or being replaced by another process
      }
      if ((await this.#liveLeases(e.hex)) > 0) {
        // Leased between the check and the rename: put it back (or drop ours if it was re-published).
        await rename(away, final).catch(() => rm(away, { recursive: true, force: true }));
        continue;
      }
      await rm(away, { recursive: true, force: true });
      total -= e.bytes;
      out.evicted.push(e.diffId);
      out.bytes += e.bytes;
      this.#note(`layer store: evicted ${e.diffId} (${e.bytes} bytes, last used ${e.lastUsed})`);
    }
    return out;
  }

  /**
   * Adds this call as a holder of an entry (synchronously, before anything is awaited: a concurrent
   * call of this instance that gives up the entry then sees it held) and makes sure the lease file
   * exists. A call that cannot write it holds nothing.
   * @throws KilnError LAYER_STORE when the lease file cannot be written.
   */
  async #lease(hex: string): Promise<void> {
    this.#holders.set(hex, (this.#holders.get(hex) ?? 0) + 1);
    try {
      await this.#leaseOp(hex, () => this.#writeLease(hex));
    } catch (e) {
      await this.#unlease(hex);
      throw e;
    }
  }

  /** Writes this instance's lease file of an entry (creating its directory, which an unlease may remove). */
  async #writeLease(hex: string): Promise<void> {
    const dir = path.join(this.#leasesDir, hex);
    for (let attempt = 0; ; attempt++) {
      try {
        await mkdir(dir, { recursive: true, mode: 0o700 });
        await writeFile(path.join(dir, this.#leaseId), "");
        return;
      } catch (e) {
        if (code(e) !== "ENOENT" || attempt >= 5) {
          throw new KilnError("LAYER_STORE", `cannot lease an entry of the layer store ${this.dir}: ${String(e)}`, {
            cause: e,
          });
        }
      }
    }
  }

  /**
   * Undoes one call's {@link #lease}. The lease file (and its directory, when empty) goes only when no
   * other call of this instance holds the entry, checked when the removal runs, after every earlier
   * write of the file.
   */
  async #unlease(hex: string): Promise<void> {
    const left = (this.#holders.get(hex) ?? 0) - 1;
    if (left > 0) {
      this.#holders.set(hex, left);
      return;
    }
    this.#holders.delete(hex);
    await this.#leaseOp(hex, async () => {
      if (this.#holders.has(hex)) return; // leased again meanwhile: the file is that call's
      const dir = path.join(this.#leasesDir, hex);
      await unlink(path.join(dir, this.#leaseId)).catch(() => undefined);
      // Another process leasing meanwhile recreates the directory (#writeLease retries on ENOENT).
      await rmdir(dir).catch(() => undefined);
    });
  }

  /**
   * Runs `op` (a write or removal of this instance's lease file of an entry) after the ones queued
   * before it. A failure is the caller's; the queue goes on.
   */
  #leaseOp(hex: string, op: () => Promise<void>): Promise<void> {
    const run = (this.#leaseOps.get(hex) ?? Promise.resolve()).then(op);
    const tail = run.catch(() => undefined);
    this.#leaseOps.set(hex, tail);
    void tail.then(() => {
      if (this.#leaseOps.get(hex) === tail) this.#leaseOps.delete(hex);
    });
    return run;
  }

  /** Names of an entry's live lease files; removes stale ones (of dead processes). */
  async #liveLeaseNames(hex: string): Promise<string[]> {
    const dir = path.join(this.#leasesDir, hex);
    const live: string[] = [];
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (pidAlive(Number(name.split("-")[0]))) live.push(name);
      else await unlink(path.join(dir, name)).catch(() => undefined);
    }
    return live;
  }

  /** Number of live leases of an entry; removes stale ones. */
  async #liveLeases(hex: string): Promise<number> {
    return (await this.#liveLeaseNames(hex)).length;
  }

  /**
   * Whether anyone but the calling call uses an entry: another call of this instance (another stage of
   * the build, whose overlay may have it as a lower) or another build (instance or process).
   */
  async #usedByOthers(hex: string): Promise<boolean> {
    if ((this.#holders.get(hex) ?? 0) > 1) return true;
    return (await this.#liveLeaseNames(hex)).some((name) => name !== this.#leaseId);
  }

  /**
   * Reads and checks an entry's meta.json and tree/, reading again after short pauses when a file is
   * missing or meta.json does not parse while the entry directory exists (see {@link REREAD_DELAYS_MS}).
   * @returns the meta; undefined when the entry is absent; `{ damaged }` when it stays unreadable.
   */
  async #readEntry(dir: string, diffId: string): Promise<Meta | undefined | { damaged: unknown }> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await readEntryMeta(dir, diffId);
      } catch (e) {
        if (!(await pathExists(dir))) return undefined; // evicted or replaced meanwhile
        const pause = REREAD_DELAYS_MS[attempt];
        if (pause === undefined || !mayBeTransient(e)) return { damaged: e };
        await delay(pause);
      }
    }
  }

  /**
   * Loads and checks an entry; a damaged one is deleted (undefined: extract it again).
   * @throws KilnError LAYER_STORE_DAMAGED when it is damaged but another build leases it (it is kept).
   */
  async #load(hex: string, diffId: string): Promise<StoredLayer | undefined> {
    const dir = path.join(this.layersDir, hex);
    const read = await this.#readEntry(dir, diffId);
    if (read === undefined) return undefined;
    if ("damaged" in read) {
      if (await this.#discard(hex, diffId, read.damaged)) return undefined;
      throw new KilnError(
        "LAYER_STORE_DAMAGED",
        `layer store: entry ${diffId} is damaged (${damageReason(read.damaged)}) and in use (another stage or build)`,
        { cause: read.damaged },
      );
    }
    const meta = read;
    meta.lastUsed = this.#now().toISOString();
    // A name of its own per call: two hits at once must not write (O_TRUNC) one temporary file, which
    // the first rename would publish half-written.
    const tmpMeta = path.join(dir, `meta.json.${this.#leaseId}-${randomBytes(4).toString("hex")}`);
    await writeFile(tmpMeta, JSON.stringify(meta))
      .then(() => rename(tmpMeta, path.join(dir, "meta.json")))
      .catch(() => rm(tmpMeta, { force: true }));
    // The index (megabytes for big bases) is read and verified only when used: a warm root whose stack
    // index is stored never needs it.
    const recorded = meta.indexSha256;
    let index: LayerIndex | undefined;
    return {
      diffId,
      dir,
      tree: path.join(dir, "tree"),
      relTree: `${hex}/tree`,
      get index(): LayerIndex {
        if (index !== undefined) return index;
        try {
          const data = readFileSync(path.join(dir, INDEX_FILE));
          // The file's embedded digest is checked by the parse; it must also be the one recorded.
          if (indexDigest(data) !== recorded) throw new Error(`${INDEX_FILE} does not match its recorded digest`);
          index = parseLayerIndex(data, diffId);
          return index;
        } catch (e) {
          throw new KilnError("LAYER_STORE_DAMAGED", `layer store: the index of entry ${diffId} is damaged`, {
            cause: e,
          });
        }
      },
      indexSha256: recorded,
      bytes: meta.bytes,
      hit: true,
      skipped: [],
    };
  }

  /**
   * Deletes a damaged entry (it is extracted again on its next use), unless another build leases it:
   * deleting it would pull its tree from under that build, so it is kept and reported, and rebuilt
   * once nobody else holds it. Like eviction it checks, renames the entry away and checks again,
   * putting it back when a lease appeared meanwhile.
   * @returns false when the entry was kept.
   */
  async #discard(hex: string, diffId: string, why: unknown): Promise<boolean> {
    const kept = (): false => {
      this.#note(
        `layer store: entry ${diffId} is damaged (${damageReason(why)}); it is in use, so it is rebuilt once nobody uses it`,
      );
      return false;
    };
    if (await this.#usedByOthers(hex)) return kept();
    const final = path.join(this.layersDir, hex);
    const away = path.join(this.#tmpDir, `${this.#leaseId}-bad-${randomBytes(4).toString("hex")}`);
    try {
      await rename(final, away);
    } catch {
      return true; // gone already (evicted, discarded or being replaced by another process)
    }
    if (await this.#usedByOthers(hex)) {
      const back = await rename(away, final).then(
        () => true,
        () => false, // re-published meanwhile: that copy is used
      );
      if (back) return kept();
      await rm(away, { recursive: true, force: true });
      return true;
    }
    this.#note(`layer store: entry ${diffId} is damaged (${damageReason(why)}); rebuilding it`);
    await rm(away, { recursive: true, force: true });
    return true;
  }

  /**
   * `layer.index`; a damaged one deletes the entry (unless another build leases it) and is rethrown
   * (KilnError LAYER_STORE_DAMAGED). A missing index.bin is read again after short pauses first (the
   * entry may be renamed away by an eviction that puts it back).
   */
  async #indexOf(layer: StoredLayer): Promise<LayerIndex> {
    for (let attempt = 0; ; attempt++) {
      try {
        return layer.index;
      } catch (e) {
        if (!(e instanceof KilnError && e.code === "LAYER_STORE_DAMAGED")) throw e;
        const pause = REREAD_DELAYS_MS[attempt];
        if (pause !== undefined && code(e.cause) === "ENOENT") {
          await delay(pause);
          continue;
        }
        await this.#discard(path.basename(layer.dir), layer.diffId, e);
        throw e;
      }
    }
  }

  /**
   * Records, before it is written, that a stack index `name` of `bytes` goes into the `stacks/` of the
   * entry at `entryDir`: the record then never counts less than the entry holds (at most more, when the
   * write fails). An entry without a record (stack indexes written by an older kiln) first gets lines
   * for the indexes it already holds, in the same append.
   */
  async #recordStackSize(entryDir: string, name: string, bytes: number): Promise<void> {
    const record = path.join(entryDir, STACK_SIZES);
    const earlier = (await pathExists(record)) ? "" : await listStackSizes(entryDir);
    await appendFile(record, `${earlier}${name} ${bytes}\n`);
  }

  /**
   * Bytes of the stack indexes kept in an entry (written after meta.json, so counted here): one read of
   * its `stack-sizes` record. An entry without one (none written yet, or by an older kiln) has its
   * `stacks/` listed instead, and what was found is recorded, so that it is listed only once.
   */
  async #stackBytes(hex: string): Promise<number> {
    const entryDir = path.join(this.layersDir, hex);
    const record = path.join(entryDir, STACK_SIZES);
    try {
      return stackSizesBytes(await readFile(record, "utf8"));
    } catch (e) {
      const listed = await listStackSizes(entryDir);
      // Appended, as writers do: a writer recording meanwhile loses nothing.
      if (listed !== "" && code(e) === "ENOENT") await appendFile(record, listed).catch(() => undefined);
      return stackSizesBytes(listed);
    }
  }

  async #list(): Promise<{ hex: string; diffId: string; bytes: number; lastUsed: string }[]> {
    const out: { hex: string; diffId: string; bytes: number; lastUsed: string }[] = [];
    for (const hex of await readdir(this.layersDir).catch(() => [] as string[])) {
      try {
        const m = JSON.parse(await readFile(path.join(this.layersDir, hex, "meta.json"), "utf8")) as Meta;
        const bytes = (Number(m.bytes) || 0) + (await this.#stackBytes(hex));
        out.push({ hex, diffId: m.diffId, bytes, lastUsed: String(m.lastUsed) });
      } catch {
        // being published, evicted or damaged: not counted (a damaged entry is rebuilt when used)
      }
    }
    return out;
  }
}
