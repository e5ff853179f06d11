import { containerDirname, compareBytewise } from "./clean-path.js";
import type { Changes } from "./changes.js";
import { indexEntryFromStat } from "./file-index.js";
import type { FileIndex, IndexEntry } from "./file-index.js";
import type { IgnoreList } from "./ignore-list.js";
import { walkRoot } from "./walk.js";

/** Options of {@link walkChanges}. */
export interface WalkChangesOptions {
  ignore?: IgnoreList;
  /** Bring `index` up to date with the root (default false). */
  update?: boolean;
  signal?: AbortSignal;
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
  const seen = new Set<string>();
  const updates: [string, IndexEntry][] = [];
  await walkRoot(root, { ignore: opts.ignore, signal: opts.signal }, async (p, host, st) => {
    const now = await indexEntryFromStat(host, st);
    if (now === undefined) return;
    seen.add(p);
    const before = index.get(p);
    if (before === undefined || entryChanged(before, now)) {
      changed.push(p);
      updates.push([p, now]);
    }
  });
  const deleted: string[] = [];
  const retyped = new Set<string>();
  for (const [p, now] of updates) {
    const before = index.get(p);
    if (before !== undefined && before.type === "dir" && now.type !== "dir") retyped.add(p);
  }
  for (const p of index.paths()) {
    if (seen.has(p) || opts.ignore?.ignores(p)) continue;
    const parent = containerDirname(p);
    // Only the topmost vanished path is listed; children of a retyped dir vanish with it.
    if (parent !== "/") {
      if (retyped.has(parent)) continue;
      if (!seen.has(parent) && index.has(parent) && !opts.ignore?.ignores(parent)) continue;
    }
    deleted.push(p);
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
