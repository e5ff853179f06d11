import { accessSync, constants } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { KilnError } from "../common/errors.js";

/** Where the kaniko-compatible executor image keeps the helper. */
export const KANIKO_HELPER_PATH = "/kaniko/kiln-exec";

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Returns the candidate locations of the kiln-exec helper, in lookup order: `native/kiln-exec` under
 * the package root (found by walking up from this module, which works from `src/` and `dist/src/`),
 * then /kaniko/kiln-exec.
 */
export function helperCandidates(moduleUrl: string = import.meta.url): string[] {
  const out: string[] = [];
  let dir = path.dirname(fileURLToPath(moduleUrl));
  for (let i = 0; i < 5; i++) {
    out.push(path.join(dir, "native", "kiln-exec"));
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  out.push(KANIKO_HELPER_PATH);
  return out;
}

/**
 * Finds the kiln-exec helper: `explicit` when given (it must be executable), else the first executable
 * of {@link helperCandidates}; undefined when there is none.
 * @throws KilnError RUN_HELPER_NOT_FOUND when `explicit` is given but not executable.
 */
export function findHelper(explicit?: string): string | undefined {
  if (explicit !== undefined) {
    if (!isExecutable(explicit)) {
      throw new KilnError(
        "RUN_HELPER_NOT_FOUND",
        `the RUN helper ${explicit} does not exist or is not executable; build it with "npm run build"`,
      );
    }
    return path.resolve(explicit);
  }
  return helperCandidates().find(isExecutable);
}
