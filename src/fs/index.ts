// Public API of the root-jailed filesystem layer (design.md §3–§4).
export { applyLayer } from "./apply-layer.js";
export type { ApplyOptions, ApplyResult, OverlayLayerInfo } from "./apply-layer.js";
export type { Changes, KnownCapabilities } from "./changes.js";
export { changesForPaths } from "./changes-for-paths.js";
export { cleanContainerPath, compareBytewise } from "./clean-path.js";
export { FileIndex, entryTypeOf, indexEntryFromStat } from "./file-index.js";
export type { IndexEntry } from "./file-index.js";
export { globMatch } from "../common/glob-match.js";
export { IgnoreList } from "./ignore-list.js";
export type { IgnoreListOptions } from "./ignore-list.js";
export { MAX_ID, lookupUser } from "./lookup-user.js";
export { SpecialNodes, xattrRequest } from "./special-node.js";
export { applyXattrs, readCapabilities } from "./xattr.js";
export type { XattrRequest } from "./xattr.js";
export type { ResolvedUser } from "./lookup-user.js";
export { parseMountinfo } from "./mountinfo.js";
export { MAX_LINK_HOPS, resolveInRoot, toContainerPath } from "../common/resolve-in-root.js";
export type { ResolveOptions } from "../common/resolve-in-root.js";
export { entryChanged, walkChanges } from "./walk-changes.js";
export type { WalkChangesOptions } from "./walk-changes.js";
export { walkRoot } from "./walk.js";
export type { WalkOptions, WalkVisitor } from "./walk.js";
export { changesTarStream, writeChangesTar } from "./write-changes-tar.js";
export type { WriteChangesOptions } from "./write-changes-tar.js";
export {
  OverlaySnapshotter,
  WalkSnapshotter,
  chooseSnapshotter,
  mergeOverlayUpper,
  overlayHelperArgument,
} from "./snapshot/index.js";
export type { OverlayDirs, SnapshotMode, SnapshotOptions, Snapshotter } from "./snapshot/index.js";
export { findWalk, gnuFind } from "./find-walk.js";
export type { FindWalkOptions } from "./find-walk.js";
export {
  LayerStore,
  mountStoreOverlay,
  mountsUnder,
  overlayOptionsFit,
  dropIgnored,
  parseSize,
  rebuildFileIndex,
  unmountStoreOverlay,
} from "./layer-store/index.js";
export type { LayerIndex, LayerStoreOptions, StoredLayer, StoreOverlay, StoreUsage } from "./layer-store/index.js";
export { ColumnarIndex, encodeColumnarIndex } from "./layer-store/index.js";
