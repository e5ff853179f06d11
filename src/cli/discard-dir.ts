import { spawn } from "node:child_process";
import { mkdir, readdir, rename, rm } from "node:fs/promises";
import { setPriority } from "node:os";
import * as path from "node:path";
import { randomBytes } from "node:crypto";

/** Deletes every path given as an argument; run with `node -e` in a detached process. */
const DELETER = `const fs = require("node:fs");
for (const p of process.argv.slice(1)) {
  for (let i = 0; i < 3; i++) {
    try { fs.rmSync(p, { recursive: true, force: true }); break; } catch { /* raced with another deleter: retry */ }
  }
}`;

/** Build directories with at most this many entries are deleted in the foreground (see {@link detachedDiscard}). */
export const INLINE_DISCARD_MAX_ENTRIES = 256;

/** True when the tree under `dir` holds at most `limit` entries; stops reading once past the limit. */
export async function isSmallTree(dir: string, limit: number): Promise<boolean> {
  let seen = 0;
  const pending = [dir];
  while (pending.length > 0) {
    const d = pending.pop() as string;
    const entries = await readdir(d, { withFileTypes: true }).catch(() => undefined);
    if (entries === undefined) return false;
    seen += entries.length;
    if (seen > limit) return false;
    for (const e of entries) if (e.isDirectory()) pending.push(path.join(d, e.name));
  }
  return true;
}

/**
 * A build's working directory holds whole stage roots: deleting an extracted Debian root plus a RUN's
 * 10,000 files takes 1.1-1.7 s on this class of machine, after the image is already pushed. Instead the
 * directory is renamed into `<stateDir>/.trash/` (same filesystem, so instant) and a detached, niced
 * `node` process with an empty environment deletes everything in the trash — this build's directory and
 * any left by builds that were killed before their deleter finished. kiln exits without waiting; when
 * the rename fails the directory is deleted in the foreground as before. A small directory (at most
 * {@link INLINE_DISCARD_MAX_ENTRIES} entries: a fully cached build, a stage root mounted from the layer
 * store) is deleted in the foreground too, faster than starting the deleter (~3-5 ms of spawn, then a
 * second Node process competing for the CPU), unless the trash holds leftovers the deleter must take.
 */
export function detachedDiscard(stateDir: string): (dir: string) => Promise<void> {
  const trash = path.join(stateDir, ".trash");
  return async (dir) => {
    const leftovers = await readdir(trash).catch(() => [] as string[]);
    if (leftovers.length === 0 && (await isSmallTree(dir, INLINE_DISCARD_MAX_ENTRIES))) {
      await rm(dir, { recursive: true, force: true });
      return;
    }
    try {
      await mkdir(trash, { recursive: true, mode: 0o700 });
      await rename(dir, path.join(trash, `${path.basename(dir)}-${randomBytes(4).toString("hex")}`));
    } catch {
      await rm(dir, { recursive: true, force: true });
      return;
    }
    const entries = (await readdir(trash).catch(() => [] as string[])).map((n) => path.join(trash, n));
    if (entries.length === 0) return;
    try {
      const child = spawn(process.execPath, ["-e", DELETER, ...entries], { detached: true, stdio: "ignore", env: {} });
      child.on("error", () => {}); // nothing to report: the next build's deleter retries the trash
      if (child.pid !== undefined) setPriority(child.pid, 10); // throws only for a pid that is gone: caught below
      child.unref();
    } catch {
      // same: left for the next build's deleter
    }
  };
}
