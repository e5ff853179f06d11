import { createHash } from "node:crypto";
import { deserialize, serialize } from "node:v8";
import { FileIndex } from "../file-index.js";
import type { IndexEntry } from "../file-index.js";
import type { IgnoreList } from "../ignore-list.js";
import type { OverlayLayerInfo } from "../apply-layer.js";

/** Format version of `index.v8`; entries of another version are rebuilt. */
export const LAYER_INDEX_VERSION = 1;

/**
 * One stored layer's index: the lstat metadata of every path of its unpacked tree (as the extraction
 * recorded it) plus its overlay whiteouts, opaque and implicitly created directories. Enough to rebuild a
 * stage root's {@link FileIndex} without walking.
 */
export interface LayerIndex {
  readonly diffId: string;
  readonly entries: ReadonlyMap<string, IndexEntry>;
  readonly whiteouts: readonly string[];
  readonly opaqueDirs: readonly string[];
  readonly implicitDirs: readonly string[];
}

interface IndexFile {
  version: number;
  diffId: string;
  /** Sorted container paths; `entries[i]` belongs to `paths[i]`. */
  paths: string[];
  entries: IndexEntry[];
  whiteouts: string[];
  opaqueDirs: string[];
  implicitDirs: string[];
}

/**
 * Serializes a layer's index to the bytes stored as `index.v8` (V8's structured-clone format: BigInt
 * times survive as they are, and reading it back is about twice as fast as JSON plus conversions, which
 * matters for 100,000-entry bases on every warm build).
 */
export function serializeLayerIndex(diffId: string, index: FileIndex, info: OverlayLayerInfo): Buffer {
  const paths = [...index.paths()].sort();
  const file: IndexFile = {
    version: LAYER_INDEX_VERSION,
    diffId,
    paths,
    entries: paths.map((p) => ({ ...(index.getClean(p) as IndexEntry), dev: 0 })),
    whiteouts: info.whiteouts,
    opaqueDirs: info.opaqueDirs,
    implicitDirs: info.implicitDirs,
  };
  return serialize(file);
}

/** sha256 (hex) of the stored index bytes, recorded in meta.json to detect a damaged index. */
export function indexDigest(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * Parses the stored index; throws a plain Error when it is not a valid index of `diffId` (the store
 * then treats the entry as damaged). `dev` is 0 in every entry: the caller knows the real device.
 */
export function parseLayerIndex(data: Buffer, diffId: string): LayerIndex {
  const f = deserialize(data) as Partial<IndexFile>;
  if (
    f.version !== LAYER_INDEX_VERSION ||
    f.diffId !== diffId ||
    !Array.isArray(f.paths) ||
    !Array.isArray(f.entries) ||
    f.paths.length !== f.entries.length
  ) {
    throw new Error(`the stored index is not a version ${LAYER_INDEX_VERSION} index of ${diffId}`);
  }
  const entries = new Map<string, IndexEntry>();
  for (let i = 0; i < f.paths.length; i++) entries.set(f.paths[i] as string, f.entries[i] as IndexEntry);
  const strings = (v: unknown): string[] => {
    if (!Array.isArray(v) || !v.every((x) => typeof x === "string"))
      throw new Error("bad path list in the stored index");
    return v as string[];
  };
  return {
    diffId,
    entries,
    whiteouts: strings(f.whiteouts),
    opaqueDirs: strings(f.opaqueDirs),
    implicitDirs: strings(f.implicitDirs),
  };
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
 * Takes the layers' entry objects over (sets their `dev`, keeps them in the index): parse each
 * {@link LayerIndex} for one rebuild only.
 */
export function rebuildFileIndex(layers: readonly LayerIndex[], dev: number, ignore?: IgnoreList): RebuiltIndex {
  const index = new FileIndex();
  const fixups = new Map<string, IndexEntry>();
  for (const layer of layers) {
    for (const w of layer.whiteouts) index.deleteTree(w);
    for (const d of layer.opaqueDirs) {
      for (const child of index.childrenOf(d)) if (!layer.entries.has(child)) index.deleteTree(child);
    }
    const implicit = new Set(layer.implicitDirs);
    for (const [p, e] of layer.entries) {
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
  if (ignore !== undefined) {
    for (const p of [...index.paths()]) if (index.has(p) && ignore.ignores(p)) index.deleteTree(p);
  }
  for (const p of [...fixups.keys()]) if (!index.has(p)) fixups.delete(p);
  return { index, fixups };
}
