import type { ImageConfigFile, Platform } from "../image/index.js";

/**
 * The config every image kiln stores in a cache starts from (entries, chain records, artifacts): its time
 * and platform; assembleImage fills in the layers.
 */
export function cacheConfig(platform: Platform, created: string): ImageConfigFile {
  return {
    created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    rootfs: { type: "layers", diff_ids: [] },
  };
}
