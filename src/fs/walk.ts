import type { BigIntStats } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import * as path from "node:path";
import { containerJoin } from "./clean-path.js";
import type { IgnoreList } from "./ignore-list.js";

/** Options of {@link walkRoot}. */
export interface WalkOptions {
  ignore?: IgnoreList | undefined;
  signal?: AbortSignal | undefined;
  /** Container path to start below (default "/"); it must be a directory. */
  start?: string;
}

/** Called once per non-ignored path, parents before children. */
export type WalkVisitor = (containerPath: string, hostPath: string, st: BigIntStats) => Promise<void> | void;

const BATCH = 64;

/**
 * Walks the tree below `root` with `lstat` only (never following symlinks, never descending into
 * ignored paths) and calls `visit` for every path below the start directory, parents first.
 */
export async function walkRoot(root: string, opts: WalkOptions, visit: WalkVisitor): Promise<void> {
  const hostRoot = path.resolve(root);
  const stack: string[] = [opts.start ?? "/"];
  while (stack.length > 0) {
    opts.signal?.throwIfAborted();
    const dir = stack.pop() as string;
    const hostDir = dir === "/" ? hostRoot : path.join(hostRoot, dir);
    let names: string[];
    try {
      names = await readdir(hostDir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") continue;
      throw e;
    }
    names.sort();
    const kids = names.map((n) => containerJoin(dir, n)).filter((p) => !opts.ignore?.ignores(p));
    for (let i = 0; i < kids.length; i += BATCH) {
      const batch = kids.slice(i, i + BATCH);
      const stats = await Promise.all(
        batch.map((p) => lstat(path.join(hostRoot, p), { bigint: true }).catch(() => undefined)),
      );
      for (let j = 0; j < batch.length; j++) {
        const st = stats[j];
        const p = batch[j] as string;
        if (st === undefined) continue;
        await visit(p, path.join(hostRoot, p), st);
        if (st.isDirectory()) stack.push(p);
      }
    }
  }
}
