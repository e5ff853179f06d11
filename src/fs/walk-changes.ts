import { compareBytewise } from "./clean-path.js";
import type { Changes } from "./changes.js";
import { indexEntryFromStatSync } from "./file-index.js";
import type { FileIndex, IndexEntry } from "./file-index.js";
import type { IgnoreList } from "./ignore-list.js";
import { findWalk, gnuFind } from "./find-walk.js";
import { walkRoot } from "./walk.js";

/** Options of {@link walkChanges}. */
export interface WalkChangesOptions {
  ignore?: IgnoreList;
  /** Bring `index` up to date with the root (default false). */
  update?: boolean;
  signal?: AbortSignal;
  /** "find" (default): GNU find does the lstat walk when installed, else Node; "node": always Node. */
  engine?: "find" | "node";
}

/**
 * True when `now` differs from `before` in anything a layer records. Besides type, mode, owner, size,
 * mtime and link target, a changed ctime or inode counts as a modification (no content hashes are kept),
 * so a same-size rewrite within one mtime tick is still detected.
 */
export function entryChanged(before: IndexEntry, now: IndexEntry): boolean {
  return (
    before.type !== now.type ||
    before.mode !== now.mode ||
    before.uid !== now.uid ||
    before.gid !== now.gid ||
    before.size !== now.size ||
    before.mtimeNs !== now.mtimeNs ||
    before.ctimeNs !== now.ctimeNs ||
    before.ino !== now.ino ||
    before.linkTarget !== now.linkTarget
  );
}

/**
 * Finds what changed in `root` since `index` was recorded with one lstat-only walk (ignored paths skipped).
 * A path whose type changed is "changed" and its former children are not reported as deleted.
 */
export async function walkChanges(root: string, index: FileIndex, opts: WalkChangesOptions = {}): Promise<Changes> {
  const changed: string[] = [];
  const updates: [string, IndexEntry][] = [];
  const retyped = new Set<string>();
  const deleted: string[] = [];
  const ig = opts.ignore;
  // Deletions: per directory, indexed children the directory no longer lists. Children of a vanished or
  // retyped directory are never looked at, so only the topmost vanished path is reported.
  const onDir = (dir: string, names: readonly string[]): void => {
    const known = index.childNames(dir);
    if (known === undefined || known.size === 0) return;
    if (retyped.has(dir)) return;
    const present = names.length < 16 ? undefined : new Set(names);
    for (const k of known) {
      if (present !== undefined ? present.has(k) : names.includes(k)) continue;
      const p = dir === "/" ? "/" + k : dir + "/" + k;
      if (ig?.ignores(p)) continue;
      deleted.push(p);
    }
  };
  const compare = (p: string, now: IndexEntry): void => {
    const before = index.getClean(p);
    if (before === undefined || entryChanged(before, now)) {
      changed.push(p);
      updates.push([p, now]);
      if (before !== undefined && before.type === "dir" && now.type !== "dir") retyped.add(p);
    }
  };
  const find = opts.engine === "node" ? undefined : await gnuFind();
  if (find !== undefined) await findWalk(find, root, { ignore: ig, signal: opts.signal, onDir }, compare);
  else {
    await walkRoot(root, { ignore: ig, signal: opts.signal, onDir }, (p, host, st) => {
      const now = indexEntryFromStatSync(host, st);
      if (now !== undefined) compare(p, now);
    });
  }
  changed.sort(compareBytewise);
  deleted.sort(compareBytewise);
  if (opts.update) {
    for (const p of deleted) index.deleteTree(p);
    for (const p of retyped) index.deleteTree(p);
    for (const [p, e] of updates) index.set(p, e);
  }
  return { changed, deleted, opaqueDirs: [] };
}
