import { chmodSync, lchownSync, lstatSync, lutimesSync, mkdirSync, symlinkSync } from "node:fs";
import * as path from "node:path";
import type { ColumnarIndex, IndexEntry } from "../fs/index.js";

/**
 * A skeleton root laid out on demand from a skeleton record: a directory or symlink of the record is
 * created when path resolution reaches it (resolveInRoot's `visit`), with its recorded owner, mode and
 * time, and its parent directory keeps the time it had (what the COPY did to it stays). A COPY resolves and stats nothing but its
 * destinations and their parents, so on those paths it meets what a skeleton laid out in full holds, and
 * only those are created (a Debian base has ~1,400 directories and symlinks: ~150 ms of mkdir on ext4).
 * Synchronous on purpose: resolutions of concurrent copies interleave, and each path is created once.
 */
export class LazySkeleton {
  readonly #dir: string;
  readonly #record: ColumnarIndex;
  readonly #visited = new Set<string>();
  /** Paths the COPY removed: nothing at or below them is laid out any more. */
  readonly #removed: string[] = [];
  #failure: unknown;

  constructor(dir: string, record: ColumnarIndex) {
    this.#dir = dir;
    this.#record = record;
  }

  /** The key of the record this skeleton is laid out from. */
  get recordKey(): string {
    return this.#record.key;
  }

  /** The first failure to create a path (the COPY's result then does not count), if any. */
  get failure(): unknown {
    return this.#failure;
  }

  /** Creates `p` (a container path whose parents exist) if the record has a directory or symlink there. */
  readonly visit = (p: string): void => {
    if (this.#failure !== undefined || this.#visited.has(p)) return;
    this.#visited.add(p);
    if (this.#removed.some((r) => p === r || p.startsWith(`${r}/`))) return;
    const e = this.#entry(p);
    if (e === undefined || (e.type !== "dir" && e.type !== "symlink")) return;
    const host = path.join(this.#dir, p);
    const parent = path.dirname(host);
    try {
      // Creating an entry changes its parent's time: it keeps the one it has now, which the COPY may have
      // set already by writing there (as it would have on a root laid out in full).
      const before = lstatSync(parent, { bigint: true });
      if (e.type === "dir") {
        mkdirSync(host, { mode: 0o700 });
        lchownSync(host, e.uid, e.gid);
        chmodSync(host, e.mode);
      } else {
        symlinkSync(e.linkTarget ?? "", host);
        lchownSync(host, e.uid, e.gid);
      }
      setTime(host, e.mtimeNs);
      if (parent !== this.#dir) lutimesSync(parent, toSeconds(before.atimeNs), toSeconds(before.mtimeNs));
    } catch (err) {
      this.#failure = err;
    }
  };

  /** Records that the COPY removed `p` (and what lay below it). */
  readonly removed = (p: string): void => {
    this.#removed.push(p);
  };

  #entry(p: string): IndexEntry | undefined {
    const i = this.#record.find(p);
    return i < 0 ? undefined : this.#record.entryAt(i);
  }
}

function setTime(host: string, mtimeNs: bigint): void {
  const t = toSeconds(mtimeNs);
  lutimesSync(host, t, t);
}

/** Seconds as utimes takes them, to the microsecond. */
function toSeconds(ns: bigint): number {
  return Number(ns / 1000n) / 1e6;
}
