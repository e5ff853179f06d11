import { existsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import * as path from "node:path";
import { applyXattrs } from "../xattr.js";
import { OverlaySnapshotter, WalkSnapshotter } from "./snapshotter.js";
import type { OverlayDirs, Snapshotter } from "./snapshotter.js";

/** kaniko's `--snapshot-mode` values. */
export type SnapshotMode = "full" | "redo" | "time";

/**
 * Finds out whether the overlay back-end works for roots under `scratchParent` (the state dir): the
 * upper filesystem takes `trusted.*` xattrs (as root), and an overlay can be mounted there by the RUN
 * runner. `attemptMount` must run any command with `dirs` as the overlay over `dirs.lower[0]` (its
 * outcome is ignored: a missing command is fine); the mount happened iff overlayfs created its
 * `work/work` directory. Never throws; everything it creates is removed.
 */
export async function probeOverlaySnapshots(
  scratchParent: string,
  attemptMount: (dirs: OverlayDirs) => Promise<unknown>,
): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  const base = path.join(scratchParent, `overlay-probe-${process.pid}`);
  try {
    const dirs: OverlayDirs = {
      lower: [path.join(base, "lower")],
      upper: path.join(base, "upper"),
      work: path.join(base, "work"),
    };
    for (const d of [...dirs.lower, dirs.upper, dirs.work]) await mkdir(d, { recursive: true, mode: 0o755 });
    const failed = await applyXattrs([
      { hostPath: dirs.upper, attrs: new Map([["trusted.kiln.probe", Buffer.from("y")]]) },
    ]);
    if (failed.length > 0) return false;
    try {
      await attemptMount(dirs);
    } catch {
      // the command itself does not exist; only the mount matters
    }
    return existsSync(path.join(dirs.work, "work"));
  } catch {
    return false;
  } finally {
    await rm(base, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * The snapshotter for a build: the overlay back-end when the probe says it works, else the metadata
 * walk. Every `--snapshot-mode` maps onto these: both back-ends detect a change by lstat metadata
 * (type, mode, owner, size, mtime, ctime, inode, link target) or by the write itself (overlay), which
 * catches every change kaniko's `time` and `redo` modes catch, and every content change `full` catches
 * (a write always moves ctime), without hashing file contents. The one difference from `full`: a file
 * rewritten with identical content is included in the layer (as `docker build` does).
 */
export function chooseSnapshotter(mode: SnapshotMode, overlayWorks: boolean): Snapshotter {
  void mode; // all modes share the back-ends (see above)
  return overlayWorks ? new OverlaySnapshotter() : new WalkSnapshotter();
}
