/** Public API of the layer cache and the base-image cache (warmer). */
export { compositeKey, inputFingerprints, type KeyInput } from "./key.js";
export { explainDifference } from "./explain.js";
export { entryFromImage, entryImage, RECORD_FIELD, type CacheEntry, type CacheRecord } from "./entry.js";
export type { CacheStore, ManifestView } from "./store.js";
export { RegistryCacheStore } from "./registry-store.js";
export { OciLayoutCacheStore } from "./layout-store.js";
export { DirCacheStore } from "./dir-store.js";
export { openCacheStore } from "./open-cache.js";
export { LayerCache, slotTag, type LayerCacheOptions, type Lookup } from "./layer-cache.js";
export { ArtifactCache, type ArtifactCacheOptions } from "./artifact-cache.js";
export { CHAIN_ANNOTATION, chainTag } from "./chain.js";
export { HEADER_COPY_ANNOTATION, headerCopyTag, type HeaderCapture } from "./header-copy.js";
export { fileFingerprint } from "./file-fingerprint.js";
export { baseCachePaths, findCachedBase, loadCachedBase, type FindCachedBaseOptions } from "./base-cache.js";
export { warmImage, type WarmOptions, type WarmResult } from "./warm.js";
