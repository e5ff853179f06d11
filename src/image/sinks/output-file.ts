import { copyFile, lstat, mkdir, readlink, realpath, rename, rm } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import * as path from "node:path";

/** Where an output file is written, and how the written file takes its place. */
export interface OutputFile {
  /** The path to write. */
  write: string;
  /** Puts what was written in place (nothing to do when written in place). */
  commit(): Promise<void>;
  /** Removes what a failed write left (nothing when written in place). */
  discard(): Promise<void>;
}

/** Symlinks followed before a target counts as found (a loop ends in the error of the last one). */
const MAX_LINKS = 40;

/**
 * How to write the output file `file` as `os.Create` would (kaniko's `--tar-path`): through symlinks, and
 * into a FIFO, a device or a file bind-mounted from the host, which a rename would replace or cannot
 * replace; any other target (a regular file, or none) is written next to it and renamed into place, so
 * that a failed write never leaves half a file.
 */
export async function outputFile(file: string): Promise<OutputFile> {
  let target = path.resolve(file);
  for (let links = 0; ; links++) {
    const st = await lstat(target).catch(() => undefined);
    if (st === undefined) break; // created
    if (st.isSymbolicLink() && links < MAX_LINKS) {
      const real = await realpath(target).catch(() => undefined);
      target = real ?? path.resolve(path.dirname(target), await readlink(target)); // dangling: create its target
      continue;
    }
    if (!st.isFile()) return inPlace(target);
    break;
  }
  await mkdir(path.dirname(target), { recursive: true });
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString("hex")}.tmp`);
  return {
    write: tmp,
    async commit() {
      try {
        await rename(tmp, target);
      } catch (e) {
        // A file bind-mounted from the host cannot be renamed over: its content is replaced instead.
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== "EBUSY" && code !== "EXDEV") throw e;
        await copyFile(tmp, target);
        await rm(tmp, { force: true });
      }
    },
    discard: () => rm(tmp, { force: true }),
  };
}

function inPlace(target: string): OutputFile {
  return { write: target, commit: () => Promise.resolve(), discard: () => Promise.resolve() };
}
