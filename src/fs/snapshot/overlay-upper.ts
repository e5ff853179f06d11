import type { BigIntStats } from "node:fs";
import { chmodSync, lchownSync, lstatSync, lutimesSync, readdirSync, renameSync } from "node:fs";
import { rm } from "node:fs/promises";
import * as path from "node:path";
import { KilnError } from "../../common/errors.js";
import type { Changes } from "../changes.js";
import { compareBytewise, containerJoin } from "../clean-path.js";
import { indexEntryFromStatSync } from "../file-index.js";
import type { FileIndex } from "../file-index.js";
import type { IgnoreList } from "../ignore-list.js";
import { copyTree } from "../layer-store/copy-tree.js";
import { readXattrsMatching, removeXattr } from "../xattr.js";

/** The xattr overlayfs (mounted by root) sets on an upper directory that hides the lower one. */
export const OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque";
/** Prefix of every xattr overlayfs keeps for itself. */
const OVERLAY_PREFIX = "trusted.overlay.";
/**
 * getfattr pattern of one pass over the upper: overlayfs's own xattrs (to find opaque dirs and strip them)
 * and `security.capability` (handed to the layer writer, which then needs no pass of its own).
 */
const UPPER_XATTRS = "^(trusted\\.overlay\\..*|security\\.capability)$";

/** Options of {@link mergeOverlayUpper}. */
export interface MergeUpperOptions {
  /** Paths merged into the root but never reported as changes. */
  ignore?: IgnoreList | undefined;
  signal?: AbortSignal | undefined;
}

/** An overlay whiteout: a character device with device number 0/0. */
function isWhiteout(st: BigIntStats): boolean {
  return st.isCharacterDevice() && st.rdev === 0n;
}

interface UpperEntry {
  cpath: string;
  st: BigIntStats;
}

/**
 * Turns the upper directory of an overlay that had `root` as its only lower directory into kiln
 * {@link Changes} and applies it to `root`: overlay whiteouts (0/0 character devices) become deletions,
 * opaque directories (`trusted.overlay.opaque=y`) become `opaqueDirs`, everything else is changed. New
 * entries are moved into the root by rename (a new directory moves with its whole subtree), so the cost
 * grows with the change, not with the root. `index` is brought up to date. The upper directory is left
 * holding only the shells of directories that already existed; the caller removes it.
 * Requires that the overlay is unmounted (the RUN's mount namespace is gone) and that `upper` and `root`
 * are on the same filesystem.
 */
export async function mergeOverlayUpper(
  root: string,
  upper: string,
  index: FileIndex,
  opts: MergeUpperOptions = {},
): Promise<Changes> {
  const hostRoot = path.resolve(root);
  const hostUpper = path.resolve(upper);
  // 1. List the upper (it holds only what the step changed).
  const entries: UpperEntry[] = [];
  const dirs: string[] = [];
  const stack = ["/"];
  while (stack.length > 0) {
    opts.signal?.throwIfAborted();
    const dir = stack.pop() as string;
    const hostDir = dir === "/" ? hostUpper : path.join(hostUpper, dir);
    for (const name of readdirSync(hostDir)) {
      const cpath = containerJoin(dir, name);
      const st = lstatSync(path.join(hostUpper, cpath), { bigint: true });
      entries.push({ cpath, st });
      if (st.isDirectory()) {
        dirs.push(cpath);
        stack.push(cpath);
      }
    }
  }
  // Overlay bookkeeping xattrs (opaque, origin, impure, …) and file capabilities of every upper entry
  // but symlinks, in one getfattr pass.
  const upperAttrs = await readXattrsMatching(
    entries.filter((e) => !e.st.isSymbolicLink() && !isWhiteout(e.st)).map((e) => path.join(hostUpper, e.cpath)),
    UPPER_XATTRS,
  );
  const opaque = new Set<string>();
  const strip = new Map<string, string[]>(); // xattr name → container paths carrying it
  const capabilities = new Map<string, Buffer>();
  for (const [host, attrs] of upperAttrs) {
    const cpath = "/" + path.relative(hostUpper, host).split(path.sep).join("/");
    for (const [name, v] of attrs) {
      if (!name.startsWith(OVERLAY_PREFIX)) {
        capabilities.set(cpath, v);
        continue;
      }
      if (name === OVERLAY_OPAQUE_XATTR && v.toString("latin1") === "y") opaque.add(cpath);
      let list = strip.get(name);
      if (list === undefined) strip.set(name, (list = []));
      list.push(cpath);
    }
  }

  const changed: string[] = [];
  const deleted: string[] = [];
  const ignored = (p: string): boolean => opts.ignore?.ignores(p) ?? false;
  for (const e of entries) {
    if (ignored(e.cpath)) continue;
    if (isWhiteout(e.st)) {
      if (index.has(e.cpath)) deleted.push(e.cpath);
    } else changed.push(e.cpath);
  }
  const opaqueDirs = [...opaque].filter((d) => !ignored(d));

  // 2. Merge into the root, parents before children (entries are in walk order).
  const moved = new Set<string>(); // dirs renamed wholesale: their subtree already moved with them
  const underMoved = (p: string): boolean => {
    for (let d = path.posix.dirname(p); d !== "/"; d = path.posix.dirname(d)) if (moved.has(d)) return true;
    return false;
  };
  const mergedDirs: UpperEntry[] = [];
  const copied = new Set<string>(); // moved by copying: the root is another filesystem (an overlay mount)
  const copiedLinks = new Map<string, string>(); // hardlinks across the copied entries
  try {
    for (const e of entries) {
      opts.signal?.throwIfAborted();
      if (underMoved(e.cpath)) continue;
      const from = path.join(hostUpper, e.cpath);
      const to = path.join(hostRoot, e.cpath);
      let cur: BigIntStats | undefined;
      try {
        cur = lstatSync(to, { bigint: true });
      } catch {
        cur = undefined;
      }
      if (isWhiteout(e.st)) {
        if (cur !== undefined) await rm(to, { recursive: true, force: true });
        index.deleteTree(e.cpath);
        continue;
      }
      if (e.st.isDirectory() && cur?.isDirectory()) {
        // Opaque: the lower content is gone (the upper's children are renamed in after this).
        if (opaque.has(e.cpath)) {
          for (const n of readdirSync(to)) {
            const child = containerJoin(e.cpath, n);
            if (ignored(child)) continue;
            await rm(path.join(to, n), { recursive: true, force: true });
            index.deleteTree(child);
          }
        }
        mergedDirs.push(e);
        continue;
      }
      if (cur !== undefined && (cur.isDirectory() || e.st.isDirectory())) {
        await rm(to, { recursive: true, force: true });
        index.deleteTree(e.cpath);
      }
      try {
        renameSync(from, to);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
        // The root is an overlay mount of stored layers: copy (cost grows with the change only).
        await copyTree(from, to, copiedLinks);
        copied.add(e.cpath);
      }
      if (e.st.isDirectory()) moved.add(e.cpath);
    }
    // Directory metadata last (children renamed into them changed their mtimes), deepest first.
    for (const e of mergedDirs.reverse()) {
      const to = path.join(hostRoot, e.cpath);
      lchownSync(to, Number(e.st.uid), Number(e.st.gid));
      chmodSync(to, Number(e.st.mode & 0o7777n));
      lutimesSync(to, new Date(Number(e.st.atimeMs)), new Date(Number(e.st.mtimeMs)));
    }
  } catch (e) {
    if (e instanceof KilnError) throw e;
    throw new KilnError(
      "SNAPSHOT_MERGE",
      `cannot merge the overlay upper ${hostUpper} into the stage root ${hostRoot}: ${String(e)}; the stage root is inconsistent, rerun the build`,
      { cause: e },
    );
  }
  // Copies never carry overlay xattrs (and overlayfs refuses to touch them on its own files).
  const underCopied = (p: string): boolean => {
    for (let d = path.posix.dirname(p); d !== "/"; d = path.posix.dirname(d)) if (copied.has(d)) return true;
    return false;
  };
  // Overlay xattrs must not leak into the root (it is the next step's lower directory). Merged
  // directories never received them (only their metadata was copied).
  const merged = new Set(mergedDirs.map((m) => m.cpath));
  for (const [name, cpaths] of strip) {
    const moved = cpaths
      .filter((c) => !merged.has(c) && !copied.has(c) && !underCopied(c))
      .map((c) => path.join(hostRoot, c));
    if (!(await removeXattr(moved, name))) {
      throw new KilnError(
        "SNAPSHOT_MERGE",
        `cannot remove the overlay attribute ${name} from ${moved.length} path(s) in ${hostRoot} (is setfattr from the Debian package attr installed?)`,
      );
    }
  }

  // 3. Index: every upper path now lives in the root. Entries that moved inside a renamed directory are
  // the same inodes, untouched since they were listed (a rename changes only the moved entry's ctime):
  // their listing stat is current unless an overlay xattr was removed from them.
  const touched = new Set<string>();
  for (const cpaths of strip.values()) for (const c of cpaths) touched.add(c);
  for (const e of entries) {
    if (isWhiteout(e.st)) continue;
    const host = path.join(hostRoot, e.cpath);
    let st: BigIntStats;
    if (underMoved(e.cpath) && !touched.has(e.cpath) && !underCopied(e.cpath)) st = e.st;
    else
      try {
        st = lstatSync(host, { bigint: true });
      } catch {
        index.deleteTree(e.cpath);
        continue;
      }
    const ie = indexEntryFromStatSync(host, st);
    if (ie === undefined) continue;
    const before = index.get(e.cpath);
    if (before !== undefined && before.type === "dir" && ie.type !== "dir") index.deleteTree(e.cpath);
    index.set(e.cpath, ie);
  }
  changed.sort(compareBytewise);
  deleted.sort(compareBytewise);
  opaqueDirs.sort(compareBytewise);
  const checked = new Set(entries.filter((e) => e.st.isFile()).map((e) => e.cpath));
  return { changed, deleted, opaqueDirs, capabilities: { checked, values: capabilities } };
}
