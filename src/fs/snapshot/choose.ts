import { OverlaySnapshotter, WalkSnapshotter } from "./snapshotter.js";
import type { Snapshotter } from "./snapshotter.js";

/** kaniko's `--snapshot-mode` values. */
export type SnapshotMode = "full" | "redo" | "time";

/**
 * The snapshotter for a build: the overlay back-end when it works (the isolation probe's `overlay`),
 * else the metadata walk. Every `--snapshot-mode` maps onto these: both back-ends detect a change by lstat metadata
 * (type, mode, owner, size, mtime, ctime, inode, link target) or by the write itself (overlay), which
 * catches every change kaniko's `time` and `redo` modes catch, and every content change `full` catches
 * (a write always moves ctime), without hashing file contents. The one difference from `full`: a file
 * rewritten with identical content is included in the layer (as `docker build` does).
 */
export function chooseSnapshotter(mode: SnapshotMode, overlayWorks: boolean): Snapshotter {
  void mode; // all modes share the back-ends (see above)
  return overlayWorks ? new OverlaySnapshotter() : new WalkSnapshotter();
}
