// Public API of the persistent store of unpacked layers (issue #14).
export { LayerStore } from "./layer-store.js";
export type { LayerStoreOptions, StoredLayer, StoreUsage } from "./layer-store.js";
export { dropIgnored, indexDigest, parseLayerIndex, rebuildFileIndex, serializeLayerIndex } from "./layer-index.js";
export { COLUMNAR_INDEX_VERSION, ColumnarIndex, encodeColumnarIndex } from "./columnar-index.js";
export type { ColumnarExtras } from "./columnar-index.js";
export type { LayerIndex, RebuiltIndex } from "./layer-index.js";
export { mountStoreOverlay, mountsUnder, overlayOptionsFit, unmountStoreOverlay } from "./overlay-mount.js";
export type { StoreOverlay } from "./overlay-mount.js";
export { parseSize } from "./parse-size.js";
