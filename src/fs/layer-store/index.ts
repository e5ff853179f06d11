// Public API of the persistent store of unpacked layers (issue #14).
export { LayerStore } from "./layer-store.js";
export type { LayerStoreOptions, StoredLayer, StoreUsage } from "./layer-store.js";
export { indexDigest, parseLayerIndex, rebuildFileIndex, serializeLayerIndex } from "./layer-index.js";
export type { LayerIndex, RebuiltIndex } from "./layer-index.js";
export { mountStoreOverlay, mountsUnder, overlayOptionsFit, unmountStoreOverlay } from "./overlay-mount.js";
export type { StoreOverlay } from "./overlay-mount.js";
export { parseSize } from "./parse-size.js";
