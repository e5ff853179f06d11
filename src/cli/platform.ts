import { hasCode } from "../common/errors.js";
import type { Platform } from "../image/types.js";
import { parsePlatform as parseOsArch } from "../registry/index.js";
import { UsageError } from "./flags/index.js";

/** The platform kiln builds for natively: the host's, in OCI terms. */
export function hostPlatform(arch: string = process.arch): Platform {
  switch (arch) {
    case "x64":
      return { os: "linux", architecture: "amd64" };
    case "arm64":
      return { os: "linux", architecture: "arm64", variant: "v8" };
    case "arm":
      return { os: "linux", architecture: "arm", variant: "v7" };
    case "ia32":
      return { os: "linux", architecture: "386" };
    default:
      return { os: "linux", architecture: arch };
  }
}

/**
 * Parses `--custom-platform` with the registry's {@link parseOsArch}; "" means the host platform.
 * A malformed value is a usage error (exit 2).
 */
export function parsePlatform(s: string): Platform {
  if (s === "") return hostPlatform();
  try {
    return parseOsArch(s);
  } catch (e) {
    if (hasCode(e, "INVALID_PLATFORM")) {
      throw new UsageError(`invalid --custom-platform "${s}": expected os/arch[/variant]`);
    }
    throw e;
  }
}
