import type { Platform } from "../image/types.js";
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

/** Parses `os/arch[/variant]` (`--custom-platform`); "" means the host platform. */
export function parsePlatform(s: string): Platform {
  if (s === "") return hostPlatform();
  const [os, architecture, variant, ...rest] = s.split("/");
  if (!os || !architecture || rest.length > 0) {
    throw new UsageError(`invalid --custom-platform "${s}": expected os/arch[/variant]`);
  }
  const p: Platform = { os: os.toLowerCase(), architecture: architecture.toLowerCase() };
  if (variant) p.variant = variant;
  else if (p.architecture === "arm64") p.variant = "v8";
  return p;
}
