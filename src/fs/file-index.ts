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

/** The fields of a bigint lstat result an index entry is made of (Node's `BigIntStats` has them all). */
export type StatLike = Pick<
  BigIntStats,
  | "mode"
  | "uid"
  | "gid"
  | "size"
  | "mtimeNs"
  | "ctimeNs"
  | "ino"
  | "dev"
  | "nlink"
  | "isFile"
  | "isDirectory"
  | "isSymbolicLink"
  | "isCharacterDevice"
  | "isBlockDevice"
  | "isFIFO"
>;

/**
 * Entry type of an lstat result; `undefined` for sockets, which kiln never snapshots.
 */
export function entryTypeOf(st: StatLike): TarEntryType | undefined {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isCharacterDevice()) return "char";
  if (st.isBlockDevice()) return "block";
  if (st.isFIFO()) return "fifo";
  return undefined;
}

/** Builds an index entry from a bigint lstat result (reading the link target of symlinks). */
export async function indexEntryFromStat(hostPath: string, st: StatLike): Promise<IndexEntry | undefined> {
  const e = baseEntry(st);
  if (e?.type === "symlink") return { ...e, linkTarget: await readlink(hostPath) };
  return e;
}

/** Synchronous {@link indexEntryFromStat}, for hot loops. */
export function indexEntryFromStatSync(hostPath: string, st: StatLike): IndexEntry | undefined {
  const e = baseEntry(st);
  if (e?.type === "symlink") return { ...e, linkTarget: readlinkSync(hostPath) };
  return e;
}

function baseEntry(st: StatLike): IndexEntry | undefined {
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
 * Read-only entries a {@link FileIndex} can sit on without copying them (a stored columnar index):
 * positions `0..count-1` hold the paths in sorted order; position `count` stands for the root "/".
 */
export interface FileIndexBase {
  readonly count: number;
  /** Position of the clean path `p`, or -1. */
  find(p: string): number;
  pathAt(i: number): string;
  /** A fresh entry object for position `i`. */
  entryAt(i: number): IndexEntry;
  /** Names of the direct children of position `i` (`count`: the root). */
  childNamesAt(i: number): string[];
}

/**
 * In-memory map of a root's container paths ("/etc/passwd") to their metadata. Extraction fills it and
 * snapshots diff against it; it also keeps a parent → children map so subtree operations cost O(subtree).
 *
 * An index made by {@link FileIndex.fromBase} reads unchanged paths from its base and keeps only what
 * changed since (set entries, deleted base paths, the children sets of directories it touched), so a
 * 100,000-path root costs nothing until used; its behaviour is the same as a fully built index.
 */
export class FileIndex {
  readonly #entries: Map<string, IndexEntry>;
  readonly #children: Map<string, Set<string>>;
  #base: FileIndexBase | undefined;
  /** Base paths deleted since (a set entry still wins over this). */
  readonly #gone = new Set<string>();
  /** Number of visible paths while there is a base. */
  #size = 0;
  /** The last path looked up in the base and its position there (a get is often followed by a set). */
  #lastFindPath: string | undefined;
  #lastFindAt = -1;

  constructor() {
    this.#entries = new Map();
    this.#children = new Map();
  }

  /** An index holding exactly the entries of `base` (read lazily; `base` must never change). */
  static fromBase(base: FileIndexBase): FileIndex {
    const index = new FileIndex();
    index.#base = base;
    index.#size = base.count;
    return index;
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
    return this.#base === undefined ? this.#entries.size : this.#size;
  }

  /** The entry for a container path, if indexed. */
  get(p: string): IndexEntry | undefined {
    return this.getClean(cleanContainerPath(p));
  }

  /** {@link get} for a path already in clean form ("/a/b": absolute, no "." / ".." / empty segments). */
  getClean(p: string): IndexEntry | undefined {
    const e = this.#entries.get(p);
    if (e !== undefined || this.#base === undefined) return e;
    const i = this.#baseFind(p);
    return i < 0 ? undefined : this.#base.entryAt(i);
  }

  /** Names of the indexed direct children of the clean container dir `dir` (live view; do not keep). */
  childNames(dir: string): ReadonlySet<string> | undefined {
    return this.#kids(dir, false);
  }

  /** True when the container path is indexed. */
  has(p: string): boolean {
    return this.#hasClean(cleanContainerPath(p));
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
    if (this.#base !== undefined && !this.#hasClean(p)) this.#size++;
    this.#entries.set(p, e);
    const parent = containerDirname(p);
    (this.#kids(parent, true) as Set<string>).add(p.slice(parent === "/" ? 1 : parent.length + 1));
  }

  /** Forgets one container path (not its descendants). */
  delete(p: string): void {
    const c = cleanContainerPath(p);
    this.#forget(c);
    const parent = containerDirname(c);
    const kids = this.#kids(parent, false);
    if (kids !== undefined) {
      kids.delete(c.slice(parent === "/" ? 1 : parent.length + 1));
      if (kids.size === 0) this.#children.delete(parent);
    }
  }

  /** Forgets a container path and everything below it. */
  deleteTree(p: string): void {
    const c = cleanContainerPath(p);
    if (c === "/") {
      this.#entries.clear();
      this.#children.clear();
      this.#gone.clear();
      this.#base = undefined;
      this.#size = 0;
      return;
    }
    const stack = [c];
    while (stack.length > 0) {
      const cur = stack.pop() as string;
      const kids = this.#kids(cur, false);
      if (kids !== undefined) {
        for (const k of kids) stack.push(containerJoin(cur, k));
        this.#children.delete(cur);
      }
      if (cur !== c) this.#forget(cur);
    }
    this.delete(c);
  }

  /** Full container paths of the indexed direct children of `dir` (unsorted). */
  childrenOf(dir: string): string[] {
    const c = cleanContainerPath(dir);
    return [...(this.#kids(c, false) ?? [])].map((k) => containerJoin(c, k));
  }

  /** All indexed container paths (unsorted). */
  *paths(): Iterable<string> {
    const base = this.#base;
    if (base !== undefined) {
      for (let i = 0; i < base.count; i++) {
        const p = base.pathAt(i);
        if (!this.#gone.has(p) && !this.#entries.has(p)) yield p;
      }
    }
    yield* this.#entries.keys();
  }

  /** An independent copy (entries are immutable and shared, and so is the base). */
  clone(): FileIndex {
    const copy = new FileIndex();
    for (const [k, v] of this.#entries) copy.#entries.set(k, v);
    for (const [k, v] of this.#children) copy.#children.set(k, new Set(v));
    copy.#base = this.#base;
    for (const g of this.#gone) copy.#gone.add(g);
    copy.#size = this.#size;
    return copy;
  }

  /** Position of a visible base path, or -1 (deleted, or not in the base). */
  #baseFind(p: string): number {
    if (this.#base === undefined || this.#gone.has(p)) return -1;
    if (this.#lastFindPath !== p) {
      this.#lastFindAt = this.#base.find(p);
      this.#lastFindPath = p;
    }
    return this.#lastFindAt;
  }

  #hasClean(p: string): boolean {
    return this.#entries.has(p) || this.#baseFind(p) >= 0;
  }

  /** Removes the entry of `p` (set or from the base); children sets are the caller's business. */
  #forget(p: string): void {
    if (this.#base === undefined) {
      this.#entries.delete(p);
      return;
    }
    if (!this.#hasClean(p)) return;
    this.#size--;
    this.#entries.delete(p);
    if (this.#base.find(p) >= 0) this.#gone.add(p);
  }

  /**
   * The children set of `dir`, created from the base (its visible children) on first use; every
   * change below `dir` goes through this set afterwards. `create`: make an empty set if there is none.
   */
  #kids(dir: string, create: boolean): Set<string> | undefined {
    let kids = this.#children.get(dir);
    if (kids !== undefined) return kids;
    const base = this.#base;
    if (base !== undefined) {
      // A deleted directory's base children stay visible unless deleted themselves (as without a base).
      const i = dir === "/" ? base.count : base.find(dir);
      if (i >= 0) {
        const prefix = dir === "/" ? "/" : dir + "/";
        for (const name of base.childNamesAt(i)) {
          if (this.#gone.has(prefix + name)) continue;
          (kids ??= new Set()).add(name);
        }
      }
    }
    if (kids === undefined && create) kids = new Set();
    if (kids !== undefined) this.#children.set(dir, kids);
    return kids;
  }
}
