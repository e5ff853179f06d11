import { FileIndex } from "../file-index.js";
import { COLUMNAR_INDEX_VERSION, ColumnarIndex, encodeColumnarIndex } from "./columnar-index.js";
import type { IndexEntry } from "../file-index.js";
import type { IgnoreList } from "../ignore-list.js";
import type { OverlayLayerInfo } from "../apply-layer.js";

/** Format version of a layer's `index.bin`; entries of another version are rebuilt. */
export const LAYER_INDEX_VERSION = COLUMNAR_INDEX_VERSION;

/**
 * One stored layer's index: the lstat metadata of every path of its unpacked tree (as the extraction
 * recorded it) plus its overlay whiteouts, opaque and implicitly created directories. Enough to rebuild a
 * stage root's {@link FileIndex} without walking.
 */
export interface LayerIndex {
  readonly diffId: string;
  /** The stored columns (entries are read from them lazily). */
  readonly columns: ColumnarIndex;
  /** Every entry by path (`dev` 0); built from {@link columns} on first use. */
  readonly entries: ReadonlyMap<string, IndexEntry>;
  readonly whiteouts: readonly string[];
  readonly opaqueDirs: readonly string[];
  readonly implicitDirs: readonly string[];
}

class StoredLayerIndex implements LayerIndex {
  readonly diffId: string;
  readonly columns: ColumnarIndex;
  #entries: Map<string, IndexEntry> | undefined;

  constructor(diffId: string, columns: ColumnarIndex) {
    this.diffId = diffId;
    this.columns = columns;
  }

  get entries(): ReadonlyMap<string, IndexEntry> {
    if (this.#entries === undefined) {
      const m = new Map<string, IndexEntry>();
      const c = this.columns;
      for (let i = 0; i < c.count; i++) m.set(c.pathAt(i), c.entryAt(i));
      this.#entries = m;
    }
    return this.#entries;
  }

  get whiteouts(): readonly string[] {
    return this.columns.whiteouts;
  }

  get opaqueDirs(): readonly string[] {
    return this.columns.opaqueDirs;
  }

  get implicitDirs(): readonly string[] {
    return this.columns.implicitDirs;
  }
}

/**
 * Serializes a layer's index to the bytes stored as `index.bin` (kiln's columnar index format, see
 * {@link encodeColumnarIndex}: loading it is a digest check plus typed-array views, no parsing).
 */
export function serializeLayerIndex(diffId: string, index: FileIndex, info: OverlayLayerInfo): Buffer {
  return encodeColumnarIndex(index, {
    kind: "layer",
    key: diffId,
    whiteouts: info.whiteouts,
    opaqueDirs: info.opaqueDirs,
    implicitDirs: info.implicitDirs,
    fixups: [],
  });
}

/**
 * The digest (hex) a stored index embeds (sha256 of its content, checked by {@link parseLayerIndex}),
 * recorded in meta.json: it identifies the entry's extraction. Empty for bytes too short to be an index.
 */
export function indexDigest(data: Buffer): string {
  return data.length < 40 ? "" : data.toString("hex", 8, 40);
}

/**
 * Parses the stored index (verifying its embedded digest); throws a plain Error when it is not an
 * intact index of `diffId` in the current format (the store then treats the entry as damaged). `dev` is
 * 0 in every entry: the caller knows the real device.
 */
export function parseLayerIndex(data: Buffer, diffId: string): LayerIndex {
  return new StoredLayerIndex(diffId, ColumnarIndex.decode(data, "layer", diffId));
}

/** What {@link rebuildFileIndex} returns. */
export interface RebuiltIndex {
  index: FileIndex;
  /**
   * Directories a layer created only as parents of its entries while a lower layer holds the real
   * directory: the overlay shows the implicit (0755 root) metadata, extraction keeps the lower one. The
   * caller restores these lower entries' mode, owner and times through the mount, then re-reads them.
   */
  fixups: Map<string, IndexEntry>;
}

/**
 * The {@link FileIndex} of an overlay whose lower directories are the stored trees of `layers` (base
 * first), as lstat sees it through the mount: same-filesystem overlays report the real inode, ctime and
 * times of the topmost copy of each path, so only `dev` is replaced (by the mount's `dev`). Applies
 * whiteouts and opaque directories layer by layer exactly like extraction, and leaves out ignored paths.
 * Reads the layers' columns (not their `entries` maps).
 */
export function rebuildFileIndex(layers: readonly LayerIndex[], dev: number, ignore?: IgnoreList): RebuiltIndex {
  const index = new FileIndex();
  const fixups = new Map<string, IndexEntry>();
  for (const layer of layers) {
    for (const w of layer.whiteouts) index.deleteTree(w);
    const cols = layer.columns;
    for (const d of layer.opaqueDirs) {
      for (const child of index.childrenOf(d)) if (cols.find(child) < 0) index.deleteTree(child);
    }
    const implicit = new Set(layer.implicitDirs);
    for (let i = 0; i < cols.count; i++) {
      const p = cols.pathAt(i);
      const e = cols.entryAt(i);
      const old = index.getClean(p);
      if (implicit.has(p) && old?.type === "dir") {
        if (!fixups.has(p)) fixups.set(p, old);
        continue;
      }
      if (fixups.size > 0) fixups.delete(p);
      if (old !== undefined && old.type === "dir" && e.type !== "dir") index.deleteTree(p);
      (e as { dev: number }).dev = dev;
      index.setClean(p, e);
    }
  }
  for (const [p, e] of fixups)
    if (index.getClean(p) !== undefined && index.getClean(p)?.ino !== e.ino) fixups.delete(p);
  if (ignore !== undefined) dropIgnored(index, ignore);
  for (const p of [...fixups.keys()]) if (!index.has(p)) fixups.delete(p);
  return { index, fixups };
}

/**
 * Deletes every ignored path (with what lies below) from `index`: the same result as testing each path
 * with `ignore.ignores`, but it only visits the children of directories an ignore rule can reach into
 * (a handful of paths instead of every one of a 100,000-path root).
 */
export function dropIgnored(index: FileIndex, ignore: IgnoreList): void {
  const visit = (dir: string): void => {
    for (const p of index.childrenOf(dir)) {
      if (ignore.ignores(p)) index.deleteTree(p);
      // Descend where a rule names something below p, or ignores everything below it ("below only"
      // rules such as /tmp/apt-key-gpghome/*: a probe name no real path has tells).
      else if (ignore.isAncestorOfIgnored(p) || ignore.ignores(p + "/\u0000")) visit(p);
    }
  };
  visit("/");
}
