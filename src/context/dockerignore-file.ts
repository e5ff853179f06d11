import { open } from "node:fs/promises";
import { constants } from "node:fs";
import { KilnError } from "../common/errors.js";
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
    const text = await readIgnoreFile(candidate);
    if (text !== undefined) return parseDockerignore(text);
  }
  return [];
}

/** The most bytes of one .dockerignore file (real ones are a few KiB). */
const MAX_DOCKERIGNORE_BYTES = 1024 * 1024;

/**
 * Reads an ignore file: undefined when missing. The context is untrusted: a FIFO there would block
 * the build and /dev/zero (through a link) never end, so only a regular file of bounded size is read.
 */
async function readIgnoreFile(file: string): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new KilnError("CONTEXT_INVALID", `${file} is not a regular file`);
    if (st.size > MAX_DOCKERIGNORE_BYTES) {
      throw new KilnError("CONTEXT_INVALID", `${file} is larger than ${MAX_DOCKERIGNORE_BYTES} bytes`);
    }
    return await fh.readFile("utf8");
  } finally {
    await fh.close();
  }
}
