import type { FlagSpec } from "./types.js";
import { defineTable } from "./define-table.js";
import { loggingFlags, registryFlags } from "./executor-flags.js";

/** Help/README group names for the warmer table, in display order. */
export const WARMER_GROUPS: readonly string[] = Object.freeze(["Warming", "Registry and TLS", "Logging"]);

/**
 * Every flag `warmer` / `kiln warm` accepts (kaniko's cmd/warmer). Note the short flags differ from
 * the executor's: -c is --cache-dir, -d is --dockerfile, -f is --force; the platform flag exists
 * only as camelCase --customPlatform.
 */
export const WARMER_FLAGS: readonly FlagSpec[] = defineTable("warmer", [
  {
    name: "image",
    short: "i",
    type: "multi",
    default: [],
    valueName: "image",
    group: "Warming",
    description: "Image to download into the cache. Repeatable.",
    implemented: true,
  },
  {
    name: "dockerfile",
    short: "d",
    type: "string",
    default: "",
    valueName: "path",
    group: "Warming",
    description: "Dockerfile (path or http(s) URL) whose FROM images to cache.",
    implemented: true,
  },
  {
    name: "build-arg",
    type: "multi",
    default: [],
    valueName: "KEY[=VALUE]",
    group: "Warming",
    description: "Build argument used to expand FROM lines of --dockerfile. Repeatable.",
    implemented: true,
  },
  {
    name: "cache-dir",
    short: "c",
    type: "string",
    default: "/cache",
    valueName: "path",
    group: "Warming",
    description: "Directory to write the cache to (created if missing).",
    implemented: true,
  },
  {
    name: "force",
    short: "f",
    type: "bool",
    default: false,
    group: "Warming",
    description: "Overwrite images already in the cache.",
    implemented: true,
  },
  {
    name: "cache-ttl",
    type: "duration",
    default: 336 * 3600 * 1000,
    valueName: "duration",
    group: "Warming",
    description: "How long cached images stay valid (Go duration, e.g. 336h).",
    implemented: true,
  },
  {
    name: "customPlatform",
    type: "string",
    default: "",
    valueName: "os/arch[/variant]",
    group: "Warming",
    description: "Platform of the images to cache; default is the host platform.",
    implemented: true,
  },
  ...registryFlags(false),
  ...loggingFlags(),
]);
