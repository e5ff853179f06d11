import { execFile } from "node:child_process";
import { stat, statfs, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { findHelper } from "./helper-path.js";

/** `statfs` type of ext2/3/4, the filesystems with the flag and the allocator it steers. */
const EXT4_SUPER_MAGIC = 0xef53;

/**
 * Empty file left in a directory once it carries the flag: later calls see it with one `stat` and
 * start no helper. It goes with the directory when that is deleted (a new one is marked anew).
 */
export const SPREAD_MARKER = ".kiln-spread";

/** What {@link spreadSubdirectories} did. */
export interface SpreadResult {
  /** True when `dir` carries the flag now (new subdirectories are spread over block groups). */
  spread: boolean;
  /** Why not, when `spread` is false (no helper, the filesystem has no such flag, the helper failed). */
  reason?: string;
}

/**
 * Marks the existing directory `dir` as the top of a directory hierarchy (`chattr +T`, with
 * `kiln-exec --spread`), so that ext4 places each directory made in it in a lightly used block group
 * instead of next to `dir`. Meant for the state directory, before a build makes its directory there:
 * otherwise the new directory and its thousands of files land in the block groups the previous build's
 * directory was just deleted from, and ext4 without a journal makes every new inode there skip the
 * recently deleted ones first (seconds per thousand files; see native/kiln-exec.c). Ext4 picks the group
 * with the fewest directories (ties broken by a hash of the name), so a build can still land in a
 * recently emptied group, only far less often than next to `dir`. Best effort: never throws. On other
 * filesystems (tmpfs, xfs, the overlay root of a container) it returns `spread: false` after one
 * `statfs`, without starting the helper. Once the flag is set, {@link SPREAD_MARKER} is written in
 * `dir`, and later calls on it return `spread: true` after the `statfs` and one `stat` of that file,
 * without the helper (a copy of the directory on ext4 that kept the marker but lost the flag, e.g. by
 * `cp -a`, is then not marked again: subdirectories are merely placed as without it).
 * @param helper the kiln-exec binary (default: {@link findHelper}); null when there is none.
 * @param opts `writeMarker: false` leaves no marker behind (a build that promised to leave its directories
 *   as found, `--cleanup`); an existing marker is still honoured.
 */
export async function spreadSubdirectories(
  dir: string,
  helper: string | null = findHelper() ?? null,
  opts: { writeMarker?: boolean } = {},
): Promise<SpreadResult> {
  if (helper === null) return { spread: false, reason: "no kiln-exec helper" };
  const fs = await statfs(dir).catch((e: unknown) => e as Error);
  if (fs instanceof Error) return { spread: false, reason: fs.message };
  if (fs.type !== EXT4_SUPER_MAGIC)
    return { spread: false, reason: `not ext4 (statfs type 0x${fs.type.toString(16)})` };
  const marker = path.join(dir, SPREAD_MARKER);
  const marked = await stat(marker).catch(() => undefined);
  if (marked?.isFile()) return { spread: true };
  const r = await new Promise<SpreadResult>((resolve) => {
    execFile(helper, ["--spread", dir], { encoding: "utf8", env: {} }, (err, stdout, stderr) => {
      const line = stdout.trim();
      if (err) resolve({ spread: false, reason: stderr.trim() || err.message });
      else if (line === "topdir=1") resolve({ spread: true });
      else resolve({ spread: false, reason: line.replace(/^topdir=0 ?/, "") || "unexpected helper output" });
    });
  });
  // Without it, the next call asks the helper again.
  if (r.spread && opts.writeMarker !== false) await writeFile(marker, "").catch(() => undefined);
  return r;
}
