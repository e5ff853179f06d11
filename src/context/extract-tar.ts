import { createWriteStream } from "node:fs";
import { chmod, link, lstat, mkdir, rm, symlink, utimes, writeFile } from "node:fs/promises";
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

/** Longest entry name accepted (Linux PATH_MAX): longer names cannot be created and are refused up front. */
const MAX_NAME_BYTES = 4096;

/**
 * Memory for the directories whose mtimes are restored after unpacking (their names plus a per-entry
 * overhead): a bound on the extractor's memory however many directory entries an archive holds.
 */
const DIR_TIMES_BUDGET = 64 * 1024 * 1024;
const DIR_TIMES_OVERHEAD = 96;

/** Resolved parent directories remembered while unpacking (bounded; see the loop). */
const PARENT_CACHE_SIZE = 4096;

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
 * Ownership is not restored (COPY sets it), permission bits and mtimes are. Memory stays bounded (entries
 * stream; names are at most 4096 bytes; the directory-mtime list has a 64 MiB budget) and so does disk
 * (`limits`); when unpacking fails, `dest` is removed, so a refused archive leaves nothing behind.
 */
export async function extractContextTar(
  input: Readable,
  dest: string,
  what: string,
  limits: Partial<ContextLimits> = {},
  signal?: AbortSignal,
): Promise<ExtractResult> {
  const root = path.resolve(dest);
  await mkdir(root, { recursive: true });
  try {
    return await unpack(input, root, what, { ...DEFAULT_CONTEXT_LIMITS, ...limits }, signal);
  } catch (e) {
    input.destroy();
    await rm(root, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
}

async function unpack(
  input: Readable,
  root: string,
  what: string,
  lim: ContextLimits,
  signal: AbortSignal | undefined,
): Promise<ExtractResult> {
  const result: ExtractResult = { entries: 0, bytes: 0, skipped: [] };
  // Relative directory name → mtime; a repeated entry replaces the earlier one (no growth).
  const dirTimes = new Map<string, number>();
  let dirTimesBytes = 0;
  const parents = new Map<string, string>();
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
    if (Buffer.byteLength(h.name) > MAX_NAME_BYTES) {
      throw new KilnError(
        "CONTEXT_UNSAFE",
        `build context ${what}: an entry name is ${Buffer.byteLength(h.name)} bytes long (${JSON.stringify(h.name.slice(0, 80))}…), more than ${MAX_NAME_BYTES}`,
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
    // Parent directories resolved (and created) earlier are reused: archives list many entries per
    // directory. The cache is dropped whenever an entry replaces an existing path (which may have been
    // one of those parents or their ancestors) or adds a symlink, so every lookup stays exact.
    const parentRel = parts.slice(0, -1).join("/");
    let parent = parents.get(parentRel);
    if (parent === undefined) {
      parent = await resolveInRoot(root, parentRel, { followFinal: true });
      await mkdir(parent, { recursive: true });
      if (parents.size >= PARENT_CACHE_SIZE) parents.clear();
      parents.set(parentRel, parent);
    }
    // The parent is resolved inside the root; the final component is addressed itself (never followed).
    const target = path.join(parent, parts[parts.length - 1] as string);
    const existing = await lstat(target).catch(() => undefined);
    if (existing && !(existing.isDirectory() && h.type === "dir")) {
      await rm(target, { recursive: true, force: true });
      parents.clear();
    }
    switch (h.type) {
      case "dir":
        await mkdir(target, { recursive: true });
        await chmod(target, (h.mode & 0o7777) | 0o700);
        if (!dirTimes.has(rel)) {
          dirTimesBytes += rel.length + DIR_TIMES_OVERHEAD;
          if (dirTimesBytes > DIR_TIMES_BUDGET) {
            throw new KilnError(
              "CONTEXT_TOO_LARGE",
              `build context ${what} holds more directories than kiln unpacks (${dirTimes.size} so far, ${DIR_TIMES_BUDGET / 1048576} MiB of names); refusing it (an archive bomb?)`,
            );
          }
        }
        dirTimes.set(rel, h.mtime);
        break;
      case "file": {
        result.bytes += h.size;
        if (result.bytes > lim.maxBytes) {
          throw new KilnError(
            "CONTEXT_TOO_LARGE",
            `build context ${what} expands to more than ${lim.maxBytes} bytes (at ${JSON.stringify(rel)}); refusing to unpack it (an archive bomb?)`,
          );
        }
        if (h.size === 0) {
          entry.body.resume();
          await writeFile(target, "", { mode: 0o600 });
        } else await pipeline(entry.body, createWriteStream(target, { mode: 0o600 }), { signal });
        await chmod(target, h.mode & 0o7777);
        await utimes(target, h.mtime, h.mtime);
        break;
      }
      case "symlink":
        // Kept as a link: readers resolve it inside the context (DirContext), never outside.
        await symlink(h.linkname, target);
        parents.clear();
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
  // Children before parents (reverse archive order). Each name is resolved in the root again and only a
  // real directory is touched: a later entry may have replaced it (or a parent) with a symlink.
  for (const [rel, mtime] of [...dirTimes].reverse()) {
    const p = await resolveInRoot(root, rel).catch(() => undefined);
    const st = p !== undefined ? await lstat(p).catch(() => undefined) : undefined;
    if (p !== undefined && st?.isDirectory()) await utimes(p, mtime, mtime).catch(() => undefined);
  }
  return result;
}
