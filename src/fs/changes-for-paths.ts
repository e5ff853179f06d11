import { lstat } from "node:fs/promises";
import * as path from "node:path";
import { cleanContainerPath, compareBytewise, containerDirname } from "./clean-path.js";
import type { Changes, KnownCapabilities } from "./changes.js";
import { indexEntryFromStat } from "./file-index.js";
import type { FileIndex } from "./file-index.js";
import type { IgnoreList } from "./ignore-list.js";
import { resolveInRoot, toContainerPath } from "../common/resolve-in-root.js";
import { walkRoot } from "./walk.js";

/**
 * Snapshot for steps that know the paths they touched (COPY, ADD, WORKDIR): stats only those paths, their
 * descendants and their parent directories, updates `index`, and returns every existing given path and
 * descendant as changed (a COPY of identical content still belongs in its layer) and given paths that
 * vanished but were indexed as deleted. Intermediate symlinks in the given paths are resolved in the root.
 * `noCapabilities`: the caller vouches that no regular file among the given paths (descendants excluded)
 * carries `security.capability`; `knownCapabilities`: the caller knows the attribute of these files (it
 * set them). The result says so (Changes.capabilities) and the layer writer does not read them again.
 */
export async function changesForPaths(
  root: string,
  index: FileIndex,
  paths: readonly string[],
  opts: { ignore?: IgnoreList; noCapabilities?: boolean; knownCapabilities?: KnownCapabilities } = {},
): Promise<Changes> {
  const hostRoot = path.resolve(root);
  const changed = new Set<string>();
  const deleted = new Set<string>();
  const parents = new Set<string>();
  /** The given paths as resolved (not what lies below them): the ones `noCapabilities` speaks for. */
  const given = new Set<string>();
  for (const raw of paths) {
    const host = await resolveInRoot(hostRoot, cleanContainerPath(raw), { followFinal: false });
    const p = toContainerPath(hostRoot, host);
    if (p === "/" || opts.ignore?.ignores(p)) continue;
    given.add(p);
    for (let d = containerDirname(p); d !== "/"; d = containerDirname(d)) parents.add(d);
    let st;
    try {
      st = await lstat(host, { bigint: true });
    } catch {
      if (index.has(p)) deleted.add(p);
      index.deleteTree(p);
      continue;
    }
    const e = await indexEntryFromStat(host, st);
    if (e === undefined) continue;
    const before = index.get(p);
    if (before !== undefined && before.type === "dir" && e.type !== "dir") index.deleteTree(p);
    index.set(p, e);
    changed.add(p);
    if (e.type === "dir") {
      await walkRoot(hostRoot, { ignore: opts.ignore, start: p }, async (c, h, s) => {
        const ce = await indexEntryFromStat(h, s);
        if (ce === undefined) return;
        index.set(c, ce);
        changed.add(c);
      });
    }
  }
  for (const d of parents) {
    if (changed.has(d)) continue;
    try {
      const host = path.join(hostRoot, d);
      const e = await indexEntryFromStat(host, await lstat(host, { bigint: true }));
      if (e !== undefined) index.set(d, e);
    } catch {
      // a parent that vanished meanwhile is not this step's business
    }
  }
  const del = [...deleted].filter((p) => ![...deleted].some((q) => q !== p && p.startsWith(q + "/")));
  const known = opts.knownCapabilities;
  const checked = opts.noCapabilities === true ? new Set([...given, ...(known?.checked ?? [])]) : known?.checked;
  return {
    changed: [...changed].sort(compareBytewise),
    deleted: del.sort(compareBytewise),
    opaqueDirs: [],
    ...(checked !== undefined ? { capabilities: { checked, values: known?.values ?? new Map<string, Buffer>() } } : {}),
  };
}
