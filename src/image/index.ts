export * from "./types.js";
export * from "./digest.js";
export * from "./media-types.js";
export * from "./assemble.js";
export * from "./tar/index.js";
export {
  compressStream,
  decompressAuto,
  decompressStream,
  detectCompression,
  MAX_COMPRESSION_LEVEL,
} from "./compress/compression.js";
export type { DetectedCompression } from "./compress/compression.js";
export { spoolLayer, layerFromBlobFile } from "./layer/spool.js";
export type { SpoolOptions, BlobFileLayerInfo } from "./layer/spool.js";
export { verifyingStream, HashingTap } from "./layer/verifying-stream.js";
export { emptyImage } from "./empty-image.js";
export { convertImageFormat, layerMediaTypeIn, relabelLayer } from "./format.js";
export { validateImage } from "./validate.js";
export { writeOciLayout, readOciLayout, REF_NAME_ANNOTATION } from "./sinks/oci-layout.js";
export type { WriteOciLayoutOptions, ReadOciLayoutOptions } from "./sinks/oci-layout.js";
export { writeDockerArchive } from "./sinks/docker-archive.js";
export { writeFileAtomic, streamToFileAtomic, hasFileOfSize } from "./sinks/atomic-file.js";
