import { lstat, readdir, rm, rmdir } from "node:fs/promises";
import path from "node:path";
import type { IgnoreList } from "../fs/index.js";

/**
 * Deletes everything in the build root `root` except the paths `ignore` protects (kiln's state
 * dir, mount points, /proc, /dev, /sys, `--ignore-path`s …): directories that contain ignored paths
 * are kept and cleaned inside; with `pruneEmpty` (the final `--cleanup`) they are removed too when that
 * leaves them empty. The in-place back-end does this before extracting a stage's base and for
 * `--cleanup`, as kaniko does. Never crosses into an ignored mount point.
 */
export async function cleanRoot(
  root: string,
  ignore: IgnoreList,
  signal?: AbortSignal,
  opts: { pruneEmpty?: boolean } = {},
): Promise<void> {
  const visit = async (dir: string): Promise<void> => {
    signal?.throwIfAborted();
    let names: string[];
    try {
      names = await readdir(path.join(root, dir));
    } catch {
      return;
    }
    for (const name of names) {
      const p = path.posix.join(dir, name);
      if (ignore.ignores(p)) continue;
      const host = path.join(root, p);
      if (ignore.isAncestorOfIgnored(p)) {
        const st = await lstat(host);
        if (st.isDirectory()) {
          await visit(p);
          // Kept only to reach ignored paths: when none of them exists it is empty now, and goes too
          // (so a /var or /tmp the build created for /var/run or /tmp/apt-key-gpghome is not left behind).
          if (opts.pruneEmpty && (await readdir(host).catch(() => [""])).length === 0)
            await rmdir(host).catch(() => undefined);
          continue;
        }
      }
      await rm(host, { recursive: true, force: true });
    }
  };
  await visit("/");
}
