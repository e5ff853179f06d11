import { assembleImage } from "./assemble.js";
import type { ManifestFamily } from "./media-types.js";
import type { Image, Platform } from "./types.js";

/** The image `FROM scratch` starts from: no layers, empty history, the given platform; OCI unless told otherwise. */
export function emptyImage(platform: Platform, family: ManifestFamily = "oci"): Image {
  return assembleImage({
    family,
    config: {
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      ...(platform["os.version"] ? { "os.version": platform["os.version"] } : {}),
      config: {},
      rootfs: { type: "layers", diff_ids: [] },
      history: [],
    },
    layers: [],
  });
}
