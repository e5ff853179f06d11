import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { mkdir, readdir, rename, rm } from "node:fs/promises";
import { setPriority } from "node:os";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { pidAlive } from "../common/pid-alive.js";

/** Prefix of the mark a running deleter keeps in the trash: `.deleter-<pid>`. */
const DELETER_MARK = ".deleter-";

/**
 * Deletes every path given after the trash directory; run with `node -e` in a detached process. kiln
 * writes the deleter's mark (`.deleter-<pid>` in the trash) as it starts it, so that a build ending
 * meanwhile with leftovers in the trash starts no second deleter; the deleter removes the mark when done.
 * The deleter itself creates nothing: removing the state dir while it runs never meets a new file.
 */
const DELETER = `const fs = require("node:fs");
const [trash, ...paths] = process.argv.slice(1);
for (const p of paths) {
  for (let i = 0; i < 3; i++) {
    try { fs.rmSync(p, { recursive: true, force: true }); break; } catch { /* raced with another deleter: retry */ }
  }
}
try { fs.rmSync(trash + "/${DELETER_MARK}" + process.pid, { force: true }); } catch { /* removed by a later build */ }`;

/** How {@link detachedDiscard} starts a deleter (replaceable in tests). */
export type StartDeleter = (trash: string, paths: readonly string[]) => void;

/** Starts the detached, niced deleter with an empty environment, and marks it; failures leave the trash to a later one. */
const startDeleter: StartDeleter = (trash, paths) => {
  try {
    const child = spawn(process.execPath, ["-e", DELETER, trash, ...paths], {
      detached: true,
      stdio: "ignore",
      env: {},
    });
    child.on("error", () => {}); // nothing to report: the next build's deleter retries the trash
    if (child.pid !== undefined) {
      // Written before the child's Node has even started (it removes the mark when it is done).
      writeFileSync(path.join(trash, `${DELETER_MARK}${child.pid}`), "");
      setPriority(child.pid, 10); // throws only for a pid that is gone: caught below
    }
    child.unref();
  } catch {
    // same: left for the next build's deleter
  }
};

/** True when a deleter's mark in `names` (the trash's entries) names a live process; stale marks are removed. */
async function deleterRunning(trash: string, names: readonly string[]): Promise<boolean> {
  let running = false;
  for (const n of names) {
    if (!n.startsWith(DELETER_MARK)) continue;
    const pid = Number(n.slice(DELETER_MARK.length));
    if (pidAlive(pid)) running = true;
    else await rm(path.join(trash, n), { force: true }).catch(() => undefined);
  }
  return running;
}

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
 * second Node process competing for the CPU); leftovers in the trash then get a deleter only when none is
 * running (kiln marks each deleter it starts with `.deleter-<pid>` in the trash; the deleter removes it).
 */
export function detachedDiscard(stateDir: string, start: StartDeleter = startDeleter): (dir: string) => Promise<void> {
  const trash = path.join(stateDir, ".trash");
  return async (dir) => {
    const names = await readdir(trash).catch(() => [] as string[]);
    const leftovers = names.filter((n) => !n.startsWith(DELETER_MARK));
    if (await isSmallTree(dir, INLINE_DISCARD_MAX_ENTRIES)) {
      await rm(dir, { recursive: true, force: true });
      if (leftovers.length > 0 && !(await deleterRunning(trash, names)))
        start(
          trash,
          leftovers.map((n) => path.join(trash, n)),
        );
      return;
    }
    try {
      await mkdir(trash, { recursive: true, mode: 0o700 });
      await rename(dir, path.join(trash, `${path.basename(dir)}-${randomBytes(4).toString("hex")}`));
    } catch {
      await rm(dir, { recursive: true, force: true });
      return;
    }
    const entries = (await readdir(trash).catch(() => [] as string[]))
      .filter((n) => !n.startsWith(DELETER_MARK))
      .map((n) => path.join(trash, n));
    if (entries.length > 0) start(trash, entries);
  };
}
