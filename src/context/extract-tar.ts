import { createWriteStream } from "node:fs";
import { chmod, link, lstat, mkdir, rm, symlink, utimes } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { KilnError } from "../common/errors.js";
import { resolveInRoot } from "../fs/index.js";
import { decompressAuto, readTar } from "../image/index.js";

/** Bounds on what a context archive may expand to (archive bombs fail with CONTEXT_TOO_LARGE). */
export interface ContextLimits {
  /** Total bytes of file content after decompression. Default 16 GiB. */
  maxBytes: number;
  /** Number of archive entries. Default 1,000,000. */
  maxEntries: number;
  /** Path components of one entry name. Default 256. */
  maxDepth: number;
}

/** The default {@link ContextLimits}. */
export const DEFAULT_CONTEXT_LIMITS: Readonly<ContextLimits> = Object.freeze({
  maxBytes: 16 * 1024 ** 3,
  maxEntries: 1_000_000,
  maxDepth: 256,
});

/** What {@link extractContextTar} wrote. */
export interface ExtractResult {
  entries: number;
  bytes: number;
  /** Entries not materialised (device nodes, fifos) with the reason. */
  skipped: string[];
}

/**
 * Unpacks a (gzip, zstd or plain — detected by content) tar stream into `dest`, streaming: nothing is held
 * whole in memory. Every host path comes from {@link resolveInRoot}, so symlinks in the archive are kept as
 * links but never followed outside `dest`; names with `..` components are rejected (CONTEXT_UNSAFE),
 * leading `/` is stripped, hardlinks must name an entry inside `dest`. Device nodes and fifos are skipped.
 * Ownership is not restored (COPY sets it), permission bits and mtimes are.
 */
export async function extractContextTar(
  input: Readable,
  dest: string,
  what: string,
  limits: Partial<ContextLimits> = {},
  signal?: AbortSignal,
): Promise<ExtractResult> {
  const lim = { ...DEFAULT_CONTEXT_LIMITS, ...limits };
  await mkdir(dest, { recursive: true });
  const root = path.resolve(dest);
  const result: ExtractResult = { entries: 0, bytes: 0, skipped: [] };
  const dirTimes: { p: string; mtime: number }[] = [];
  const plain = await decompressAuto(input);
  for await (const entry of readTar(plain)) {
    signal?.throwIfAborted();
    const h = entry.header;
    if (++result.entries > lim.maxEntries) {
      throw new KilnError(
        "CONTEXT_TOO_LARGE",
        `build context ${what} has more than ${lim.maxEntries} entries; refusing to unpack it (an archive bomb?)`,
      );
    }
    const parts = h.name.split("/").filter((s) => s !== "" && s !== ".");
    if (parts.length === 0) continue;
    if (parts.includes("..")) {
      throw new KilnError(
        "CONTEXT_UNSAFE",
        `build context ${what}: entry ${JSON.stringify(h.name)} has a ".." component; refusing to unpack outside the context`,
      );
    }
    if (parts.length > lim.maxDepth) {
      throw new KilnError(
        "CONTEXT_TOO_LARGE",
        `build context ${what}: entry ${JSON.stringify(h.name.slice(0, 200))} is nested ${parts.length} levels deep, more than the limit of ${lim.maxDepth}`,
      );
    }
    const rel = parts.join("/");
    const parent = await resolveInRoot(root, parts.slice(0, -1).join("/"), { followFinal: true });
    await mkdir(parent, { recursive: true });
    // The parent is resolved inside the root; the final component is addressed itself (never followed).
    const target = path.join(parent, parts[parts.length - 1] as string);
    const existing = await lstat(target).catch(() => undefined);
    if (existing && !(existing.isDirectory() && h.type === "dir")) await rm(target, { recursive: true, force: true });
    switch (h.type) {
      case "dir":
        await mkdir(target, { recursive: true });
        await chmod(target, (h.mode & 0o7777) | 0o700);
        dirTimes.push({ p: target, mtime: h.mtime });
        break;
      case "file": {
        result.bytes += h.size;
        if (result.bytes > lim.maxBytes) {
          throw new KilnError(
            "CONTEXT_TOO_LARGE",
            `build context ${what} expands to more than ${lim.maxBytes} bytes (at ${JSON.stringify(rel)}); refusing to unpack it (an archive bomb?)`,
          );
        }
        await pipeline(entry.body, createWriteStream(target, { mode: 0o600 }), { signal });
        await chmod(target, h.mode & 0o7777);
        await utimes(target, h.mtime, h.mtime);
        break;
      }
      case "symlink":
        // Kept as a link: readers resolve it inside the context (DirContext), never outside.
        await symlink(h.linkname, target);
        break;
      case "hardlink": {
        const lparts = h.linkname.split("/").filter((s) => s !== "" && s !== ".");
        if (lparts.includes("..") || lparts.length === 0) {
          throw new KilnError(
            "CONTEXT_UNSAFE",
            `build context ${what}: hardlink ${JSON.stringify(h.name)} points to ${JSON.stringify(h.linkname)}, outside the context`,
          );
        }
        const from = await resolveInRoot(root, lparts.join("/"));
        const st = await lstat(from).catch(() => undefined);
        if (!st || st.isDirectory()) {
          throw new KilnError(
            "CONTEXT_UNSAFE",
            `build context ${what}: hardlink ${JSON.stringify(h.name)} points to ${JSON.stringify(h.linkname)}, which is not a file earlier in the archive`,
          );
        }
        await link(from, target);
        break;
      }
      default:
        result.skipped.push(`${rel} (${h.type})`);
        entry.body.resume();
    }
  }
  for (const d of dirTimes.reverse()) await utimes(d.p, d.mtime, d.mtime).catch(() => undefined);
  return result;
}
