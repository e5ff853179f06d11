// Snapshot back-ends (design.md §4): the overlay upper-dir diff and the metadata walk.
export { OVERLAY_OPAQUE_XATTR, mergeOverlayUpper } from "./overlay-upper.js";
export type { MergeUpperOptions } from "./overlay-upper.js";
export { OverlaySnapshotter, WalkSnapshotter, overlayHelperArgument } from "./snapshotter.js";
export type { OverlayDirs, SnapshotOptions, Snapshotter } from "./snapshotter.js";
export { chooseSnapshotter } from "./choose.js";
export type { SnapshotMode } from "./choose.js";
