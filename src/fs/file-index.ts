import type { BigIntStats } from "node:fs";
import { readlinkSync } from "node:fs";
import { readlink } from "node:fs/promises";
import type { TarEntryType } from "../image/tar/index.js";
import { cleanContainerPath, containerDirname, containerJoin } from "./clean-path.js";
import type { IgnoreList } from "./ignore-list.js";
import { walkRoot } from "./walk.js";

/** Metadata of one path in a root, as recorded by extraction or a walk (all from `lstat`). */
export interface IndexEntry {
  readonly type: TarEntryType;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  readonly ino: number;
  readonly dev: number;
  readonly nlink: number;
  readonly linkTarget?: string;
}

/**
 * Entry type of an lstat result; `undefined` for sockets, which kiln never snapshots.
 */
export function entryTypeOf(st: BigIntStats): TarEntryType | undefined {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isCharacterDevice()) return "char";
  if (st.isBlockDevice()) return "block";
  if (st.isFIFO()) return "fifo";
  return undefined;
}

/** Builds an index entry from a bigint lstat result (reading the link target of symlinks). */
export async function indexEntryFromStat(hostPath: string, st: BigIntStats): Promise<IndexEntry | undefined> {
  const e = baseEntry(st);
  if (e?.type === "symlink") return { ...e, linkTarget: await readlink(hostPath) };
  return e;
}

/** Synchronous {@link indexEntryFromStat}, for hot loops. */
export function indexEntryFromStatSync(hostPath: string, st: BigIntStats): IndexEntry | undefined {
  const e = baseEntry(st);
  if (e?.type === "symlink") return { ...e, linkTarget: readlinkSync(hostPath) };
  return e;
}

function baseEntry(st: BigIntStats): IndexEntry | undefined {
  const type = entryTypeOf(st);
  if (type === undefined) return undefined;
  const e: IndexEntry = {
    type,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: type === "file" || type === "symlink" ? Number(st.size) : 0,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    ino: Number(st.ino),
    dev: Number(st.dev),
    nlink: Number(st.nlink),
  };
  return e;
}

/**
 * In-memory map of a root's container paths ("/etc/passwd") to their metadata. Extraction fills it and
 * snapshots diff against it; it also keeps a parent → children map so subtree operations cost O(subtree).
 */
export class FileIndex {
  readonly #entries: Map<string, IndexEntry>;
  readonly #children: Map<string, Set<string>>;

  constructor() {
    this.#entries = new Map();
    this.#children = new Map();
  }

  /** Indexes every non-ignored path below `root` (the root itself is not an entry). */
  static async fromWalk(root: string, ignore?: IgnoreList, signal?: AbortSignal): Promise<FileIndex> {
    const index = new FileIndex();
    await walkRoot(root, { ignore, signal }, (p, host, st) => {
      const e = indexEntryFromStatSync(host, st);
      if (e !== undefined) index.set(p, e);
    });
    return index;
  }

  /** Number of indexed paths. */
  get size(): number {
    return this.#entries.size;
  }

  /** The entry for a container path, if indexed. */
  get(p: string): IndexEntry | undefined {
    return this.#entries.get(cleanContainerPath(p));
  }

  /** {@link get} for a path already in clean form ("/a/b": absolute, no "." / ".." / empty segments). */
  getClean(p: string): IndexEntry | undefined {
    return this.#entries.get(p);
  }

  /** Names of the indexed direct children of the clean container dir `dir` (live view; do not keep). */
  childNames(dir: string): ReadonlySet<string> | undefined {
    return this.#children.get(dir);
  }

  /** True when the container path is indexed. */
  has(p: string): boolean {
    return this.#entries.has(cleanContainerPath(p));
  }

  /** Records (or replaces) the metadata of a container path. Entries are frozen. */
  set(p: string, e: IndexEntry): void {
    const c = cleanContainerPath(p);
    if (c === "/") return;
    this.setClean(c, Object.freeze({ ...e }));
  }

  /**
   * {@link set} for bulk loading (100,000 entries): `p` must already be clean and not "/", and `e` is
   * taken over as is, not frozen (freezing costs more than the rest of the insert); the caller must
   * never change it afterwards.
   */
  setClean(p: string, e: IndexEntry): void {
    this.#entries.set(p, e);
    const parent = containerDirname(p);
    let kids = this.#children.get(parent);
    if (kids === undefined) {
      kids = new Set();
      this.#children.set(parent, kids);
    }
    kids.add(p.slice(parent === "/" ? 1 : parent.length + 1));
  }

  /** Forgets one container path (not its descendants). */
  delete(p: string): void {
    const c = cleanContainerPath(p);
    this.#entries.delete(c);
    const parent = containerDirname(c);
    const kids = this.#children.get(parent);
    if (kids !== undefined) {
      kids.delete(c.slice(parent === "/" ? 1 : parent.length + 1));
      if (kids.size === 0) this.#children.delete(parent);
    }
  }

  /** Forgets a container path and everything below it. */
  deleteTree(p: string): void {
    const c = cleanContainerPath(p);
    const stack = [c];
    while (stack.length > 0) {
      const cur = stack.pop() as string;
      const kids = this.#children.get(cur);
      if (kids !== undefined) {
        for (const k of kids) stack.push(containerJoin(cur, k));
        this.#children.delete(cur);
      }
      if (cur !== "/") this.#entries.delete(cur);
    }
    if (c !== "/") this.delete(c);
  }

  /** Full container paths of the indexed direct children of `dir` (unsorted). */
  childrenOf(dir: string): string[] {
    const c = cleanContainerPath(dir);
    return [...(this.#children.get(c) ?? [])].map((k) => containerJoin(c, k));
  }

  /** All indexed container paths (unsorted). */
  paths(): Iterable<string> {
    return this.#entries.keys();
  }

  /** An independent copy (entries are immutable and shared). */
  clone(): FileIndex {
    const copy = new FileIndex();
    for (const [k, v] of this.#entries) copy.#entries.set(k, v);
    for (const [k, v] of this.#children) copy.#children.set(k, new Set(v));
    return copy;
  }
}
