import {
  chmodSync,
  constants,
  copyFileSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
} from "node:fs";
import type { BigIntStats } from "node:fs";
import * as path from "node:path";
import { KilnError } from "../../common/errors.js";
import { findTool, runTool } from "../exec-tool.js";
import { applyXattrs, readXattrsMatching } from "../xattr.js";
import type { XattrRequest } from "../xattr.js";

/** Attributes copied along (getfattr regex; `trusted.overlay.*`, overlayfs's own, are dropped after). */
const COPIED_XATTRS = "^(security\\.capability|user\\..*|trusted\\..*)$";

function seconds(ns: bigint): number {
  return Number(ns / 1000n) / 1e6;
}

/**
 * Copies the tree at `from` (a file, symlink, special file or directory) to the absent path `to`,
 * keeping type, content, mode, owner, times, hardlinks inside the tree and the xattrs kiln restores:
 * the fallback of a rename across filesystems (a step's overlay upper merged into a stage root that is
 * itself an overlay mount). Regular files are cloned where the filesystem can (`COPYFILE_FICLONE`).
 * `links` maps `dev:ino` of multiply-linked files to their first copy: share one map between the calls
 * of one merge so that hardlinks between separately copied trees survive too.
 * @throws KilnError SNAPSHOT_MERGE when a node cannot be recreated.
 */
export async function copyTree(from: string, to: string, links = new Map<string, string>()): Promise<void> {
  const dirs: { to: string; st: BigIntStats }[] = [];
  const all: { from: string; to: string; st: BigIntStats }[] = [];
  let mknod: string | undefined | null = null;
  const stack: { from: string; to: string }[] = [{ from, to }];
  while (stack.length > 0) {
    const cur = stack.pop() as { from: string; to: string };
    const st = lstatSync(cur.from, { bigint: true });
    all.push({ ...cur, st });
    if (st.isDirectory()) {
      mkdirSync(cur.to, { mode: 0o700 });
      dirs.push({ to: cur.to, st });
      for (const n of readdirSync(cur.from)) stack.push({ from: path.join(cur.from, n), to: path.join(cur.to, n) });
      continue;
    }
    if (st.isFile() && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = links.get(key);
      if (first !== undefined) {
        linkSync(first, cur.to);
        continue;
      }
      links.set(key, cur.to);
    }
    if (st.isFile()) copyFileSync(cur.from, cur.to, constants.COPYFILE_FICLONE);
    else if (st.isSymbolicLink()) symlinkSync(readlinkSync(cur.from), cur.to);
    else {
      if (mknod === null) mknod = await findTool("mknod");
      const kind = st.isFIFO()
        ? ["p"]
        : [st.isBlockDevice() ? "b" : "c", String(major(st.rdev)), String(minor(st.rdev))];
      const res = mknod === undefined ? undefined : await runTool(mknod, ["--", cur.to, ...kind]);
      if (!res?.ok) {
        throw new KilnError(
          "SNAPSHOT_MERGE",
          `cannot recreate the special file ${cur.to}: ${res === undefined ? "mknod not found" : res.stderr}`,
        );
      }
    }
    if (st.isSymbolicLink()) {
      lchownSync(cur.to, Number(st.uid), Number(st.gid));
      lutimesSync(cur.to, seconds(st.atimeNs), seconds(st.mtimeNs));
    } else {
      lchownSync(cur.to, Number(st.uid), Number(st.gid));
      chmodSync(cur.to, Number(st.mode & 0o7777n));
      lutimesSync(cur.to, seconds(st.atimeNs), seconds(st.mtimeNs));
    }
  }
  const attrs = await readXattrsMatching(
    all.filter((e) => !e.st.isSymbolicLink()).map((e) => e.from),
    COPIED_XATTRS,
  );
  const reqs: XattrRequest[] = [];
  for (const e of all) {
    const a = attrs.get(e.from);
    for (const k of [...(a?.keys() ?? [])]) if (k.startsWith("trusted.overlay.")) a?.delete(k);
    if (a !== undefined && a.size > 0) reqs.push({ hostPath: e.to, attrs: a });
  }
  const failed = await applyXattrs(reqs);
  if (failed.length > 0) {
    throw new KilnError(
      "SNAPSHOT_MERGE",
      `cannot copy extended attributes to ${failed[0]?.path}: ${failed[0]?.reason}`,
    );
  }
  // Directory metadata last (creating children moved their mtimes), deepest first.
  for (const d of dirs.reverse()) {
    lchownSync(d.to, Number(d.st.uid), Number(d.st.gid));
    chmodSync(d.to, Number(d.st.mode & 0o7777n));
    lutimesSync(d.to, seconds(d.st.atimeNs), seconds(d.st.mtimeNs));
  }
}

function major(dev: bigint): number {
  return Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
}

function minor(dev: bigint): number {
  return Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
}
