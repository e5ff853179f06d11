import { ColumnarIndex, encodeColumnarIndex, FileIndex, type IndexEntry } from "../fs/index.js";
import { containerDirname } from "../fs/clean-path.js";
import type { TarEntryType } from "../image/index.js";

/**
 * The filesystem a COPY on a skeleton root sees, as one columnar index (the layer store's format): every
 * directory and symlink with its owner, mode, time and target, and every other path with its type only.
 * Host details (inode, device, ctime, link count, a directory's size) are left out. Directories only implied
 * by the layers keep the time their extraction gave them, as on any extracted root. The cache keeps it under
 * the filesystem's chain key (skeleton-records.ts).
 */

const LAID_OUT: ReadonlySet<TarEntryType> = new Set(["dir", "symlink"]);

/** What a path of a record is: an entry to lay out, or a path recorded by its type alone. */
export type RecordedPath = IndexEntry | TarEntryType;

/**
 * Encodes a record from `paths` (container paths; "/" is never one). A path whose parent directory is
 * not among them cannot be reached and is left out (a stale path of a skeleton's conservative set).
 */
export function encodeSkeletonRecord(key: string, paths: Iterable<readonly [string, RecordedPath]>): Buffer {
  const all = new Map<string, RecordedPath>();
  for (const [p, e] of paths) {
    const prior = all.get(p);
    // A directory or symlink recorded with metadata wins over the same path recorded by type.
    if (prior !== undefined && typeof prior !== "string" && LAID_OUT.has(prior.type)) continue;
    all.set(p, e);
  }
  const index = new FileIndex();
  for (const [p, e] of all) {
    const parent = containerDirname(p);
    if (parent !== "/") {
      const d = all.get(parent);
      const type = d === undefined ? undefined : typeof d === "string" ? d : d.type;
      if (type !== "dir") continue;
    }
    index.set(p, recordEntry(e));
  }
  return encodeColumnarIndex(index, {
    kind: "stack",
    key,
    whiteouts: [],
    opaqueDirs: [],
    implicitDirs: [],
    fixups: [],
  });
}

function recordEntry(e: RecordedPath): IndexEntry {
  const host = { ctimeNs: 0n, ino: 0, dev: 0, nlink: 1 };
  if (typeof e === "string") return { type: e, mode: 0, uid: 0, gid: 0, size: 0, mtimeNs: 0n, ...host };
  if (!LAID_OUT.has(e.type)) return { type: e.type, mode: 0, uid: 0, gid: 0, size: 0, mtimeNs: 0n, ...host };
  return {
    type: e.type,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    size: e.type === "symlink" ? e.size : 0,
    mtimeNs: e.mtimeNs,
    ...host,
    ...(e.linkTarget !== undefined ? { linkTarget: e.linkTarget } : {}),
  };
}

/** Decodes a record stored for `key`; throws when it is damaged or recorded for another key. */
export function decodeSkeletonRecord(data: Buffer, key: string): ColumnarIndex {
  return ColumnarIndex.decode(data, "stack", key);
}

/** True when `type` is laid out on a skeleton (the others are only recorded). */
export function laidOut(type: TarEntryType): boolean {
  return LAID_OUT.has(type);
}
