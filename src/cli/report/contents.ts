import type { Readable } from "node:stream";
import { readTar } from "../../image/tar/index.js";
import type { LayerContents, LayerContributor } from "./model.js";

/** How {@link layerContents} groups and trims. */
export interface LayerContentsOptions {
  /** Path components kept when grouping (default 3: `usr/lib/x86_64-linux-gnu`). */
  depth?: number;
  /** Contributors kept (default 10). */
  limit?: number;
}

/**
 * Reads an uncompressed layer tar and sums the bytes of its regular files by path prefix, so a
 * report can show what makes a layer big. Streams: memory is bounded by the number of prefixes.
 */
export async function layerContents(tar: Readable, opts: LayerContentsOptions = {}): Promise<LayerContents> {
  const depth = opts.depth ?? 3;
  const limit = opts.limit ?? 10;
  const groups = new Map<string, LayerContributor>();
  let entries = 0;
  let fileBytes = 0;
  for await (const e of readTar(tar)) {
    entries++;
    if (e.header.type !== "file") continue;
    const size = e.header.size;
    fileBytes += size;
    const parts = e.header.name
      .replace(/^(\.\/|\/)+/, "")
      .split("/")
      .filter((p) => p !== "");
    const key = `/${parts.slice(0, depth).join("/")}`;
    const g = groups.get(key);
    if (g) {
      g.bytes += size;
      g.files++;
    } else groups.set(key, { path: key, bytes: size, files: 1 });
  }
  const top = [...groups.values()]
    .sort((a, b) => b.bytes - a.bytes || (a.path < b.path ? -1 : 1))
    .slice(0, limit)
    .filter((g) => g.bytes > 0);
  return { entries, fileBytes, top };
}
