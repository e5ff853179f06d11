import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { appendFile, mkdir, readdir, readFile, rename, rm, rmdir, stat, unlink, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { pipeline, Transform } from "node:stream";
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
 *   first and puts it back when a lease appeared meanwhile.
 * - An entry whose meta.json is missing, invalid or of an older format is deleted and extracted again;
 *   so is one whose index.bin does not match its recorded digest, found when the index is first read
 *   (a hit reads it lazily: {@link StoredLayer.index}). File contents are not re-hashed on each use.
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
  readonly #leased = new Set<string>();
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
   * @throws KilnError LAYER_STORE_DIGEST when the stream's sha256 is not `diffId` (nothing is stored);
   *   LAYER_UNSAFE / LAYER_APPLY from extraction.
   */
  async acquire(diffId: string, open: () => Promise<Readable>, signal?: AbortSignal): Promise<StoredLayer> {
    const hex = DIFF_ID.exec(diffId)?.[1];
    if (hex === undefined)
      throw new KilnError("LAYER_STORE", `layer store: unsupported diffID ${diffId} (sha256 only)`);
    await this.#lease(hex);
    const found = await this.#load(hex, diffId);
    if (found) return found;
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
   * lease left behind, when it does not (or `diffId` is not sha256).
   */
  async lookup(diffId: string): Promise<StoredLayer | undefined> {
    const hex = DIFF_ID.exec(diffId)?.[1];
    if (hex === undefined) return undefined;
    const leasedBefore = this.#leased.has(hex);
    await this.#lease(hex);
    const found = await this.#load(hex, diffId);
    if (found === undefined && !leasedBefore) {
      this.#leased.delete(hex);
      await unlink(path.join(this.#leasesDir, hex, this.#leaseId)).catch(() => undefined);
      // Another process leasing meanwhile recreates the directory (#lease retries on ENOENT).
      await rmdir(path.join(this.#leasesDir, hex)).catch(() => undefined);
    }
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
    for (const hex of this.#leased) await unlink(path.join(this.#leasesDir, hex, this.#leaseId)).catch(() => undefined);
    this.#leased.clear();
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
      if (this.#leased.has(e.hex) || (await this.#liveLeases(e.hex)) > 0) continue;
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

  async #lease(hex: string): Promise<void> {
    const dir = path.join(this.#leasesDir, hex);
    for (let attempt = 0; ; attempt++) {
      try {
        await mkdir(dir, { recursive: true, mode: 0o700 });
        await writeFile(path.join(dir, this.#leaseId), "");
        break;
      } catch (e) {
        if (code(e) !== "ENOENT" || attempt >= 5) {
          throw new KilnError("LAYER_STORE", `cannot lease an entry of the layer store ${this.dir}: ${String(e)}`, {
            cause: e,
          });
        }
      }
    }
    this.#leased.add(hex);
  }

  /** Number of live leases of an entry; removes stale ones. */
  async #liveLeases(hex: string): Promise<number> {
    const dir = path.join(this.#leasesDir, hex);
    let n = 0;
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (pidAlive(Number(name.split("-")[0]))) n++;
      else await unlink(path.join(dir, name)).catch(() => undefined);
    }
    return n;
  }

  /** Loads and checks an entry; a damaged one is deleted (undefined: extract it again). */
  async #load(hex: string, diffId: string): Promise<StoredLayer | undefined> {
    const dir = path.join(this.layersDir, hex);
    let meta: Meta;
    try {
      let metaText: string;
      try {
        metaText = await readFile(path.join(dir, "meta.json"), "utf8");
      } catch (e) {
        if (code(e) === "ENOENT" && !(await pathExists(dir))) return undefined;
        throw new Error("meta.json is missing or unreadable");
      }
      meta = JSON.parse(metaText) as Meta;
      if (meta.version !== 2 || meta.diffId !== diffId || typeof meta.indexSha256 !== "string") {
        throw new Error((meta.version as number) === 1 ? "it is in an older format" : "meta.json is invalid");
      }
      if (!(await stat(path.join(dir, "tree"))).isDirectory()) throw new Error("tree/ is not a directory");
    } catch (e) {
      if (!(await pathExists(dir))) return undefined; // evicted or replaced meanwhile
      await this.#discard(hex, diffId, e);
      return undefined;
    }
    meta.lastUsed = this.#now().toISOString();
    const tmpMeta = path.join(dir, `meta.json.${this.#leaseId}`);
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

  /** Deletes a damaged entry (it is extracted again on its next use). */
  async #discard(hex: string, diffId: string, why: unknown): Promise<void> {
    const reason = why instanceof KilnError && why.cause !== undefined ? why.cause : why;
    this.#note(
      `layer store: entry ${diffId} is damaged (${reason instanceof Error ? reason.message : String(reason)}); rebuilding it`,
    );
    const away = path.join(this.#tmpDir, `${this.#leaseId}-bad-${randomBytes(4).toString("hex")}`);
    await rename(path.join(this.layersDir, hex), away).catch(() => undefined);
    await rm(away, { recursive: true, force: true });
  }

  /** `layer.index`; a damaged one deletes the entry and is rethrown (KilnError LAYER_STORE_DAMAGED). */
  async #indexOf(layer: StoredLayer): Promise<LayerIndex> {
    try {
      return layer.index;
    } catch (e) {
      if (e instanceof KilnError && e.code === "LAYER_STORE_DAMAGED") {
        await this.#discard(path.basename(layer.dir), layer.diffId, e);
      }
      throw e;
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
