import { existsSync, readFileSync } from "node:fs";
import type { DetectionFs } from "./container-detect.js";

/** The real machine's files, for {@link DetectionFs}. */
export const hostDetectionFs: DetectionFs = Object.freeze({
  exists: (p: string): boolean => existsSync(p),
  read: (p: string): string | undefined => {
    try {
      return readFileSync(p, "utf8");
    } catch {
      return undefined;
    }
  },
});
