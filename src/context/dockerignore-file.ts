import { readFile } from "node:fs/promises";
import { parseDockerignore } from "../dockerfile/index.js";
import { resolveInRoot } from "../fs/index.js";

/**
 * Reads the ignore patterns for a build: `<Dockerfile>.dockerignore` next to the Dockerfile takes
 * precedence over `<context>/.dockerignore` (kaniko's and BuildKit's rule), the latter resolved inside the
 * context. Missing files mean no patterns.
 */
export async function loadIgnorePatterns(contextDir: string, dockerfilePath: string): Promise<string[]> {
  // The context's own file is resolved inside the context (a symlink cannot read a host file).
  const inContext = await resolveInRoot(contextDir, ".dockerignore", { followFinal: true });
  for (const candidate of [`${dockerfilePath}.dockerignore`, inContext]) {
    let text: string;
    try {
      text = await readFile(candidate, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw e;
    }
    return parseDockerignore(text);
  }
  return [];
}
