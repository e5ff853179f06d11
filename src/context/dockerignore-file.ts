import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseDockerignore } from "../dockerfile/index.js";

/**
 * Reads the ignore patterns for a build: `<Dockerfile>.dockerignore` next to the Dockerfile takes
 * precedence over `<context>/.dockerignore` (kaniko's and BuildKit's rule). Missing files mean no patterns.
 */
export async function loadIgnorePatterns(contextDir: string, dockerfilePath: string): Promise<string[]> {
  for (const candidate of [`${dockerfilePath}.dockerignore`, path.join(contextDir, ".dockerignore")]) {
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
