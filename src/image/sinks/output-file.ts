import { copyFile, lstat, mkdir, readlink, realpath, rename, rm, stat } from "node:fs/promises";
import * as path from "node:path";
import { tempNameFor } from "./atomic-file.js";

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
 * How to write the output file `file`: next to it and renamed into place, so that a failed write never
 * leaves half a file. With `followLinks` (a path the user names, kaniko's `--tar-path`), as `os.Create`
 * would: through symlinks, and into a FIFO, a device or a file bind-mounted from the host, which a rename
 * would replace or cannot replace. Never for a path in a shared directory (a planted link would redirect
 * the write).
 */
export async function outputFile(file: string, opts: { followLinks?: boolean } = {}): Promise<OutputFile> {
  let target = path.resolve(file);
  for (let links = 0; opts.followLinks === true; links++) {
    const st = await lstat(target).catch(() => undefined);
    if (st === undefined) break; // created
    if (st.isSymbolicLink() && links < MAX_LINKS) {
      // What the link leads to as the kernel opens it: `/dev/stdout` or `/dev/fd/3` lead to a pipe, whose
      // link text (`pipe:[N]`) is no path: such a target is written through the link itself.
      const followed = await stat(target).catch(() => undefined);
      if (followed !== undefined && !followed.isFile() && !followed.isDirectory()) return inPlace(target);
      const real = await realpath(target).catch(() => undefined);
      // A dangling link: its target is created, relative to where its directory really is.
      target = real ?? path.resolve(await realpath(path.dirname(target)), await readlink(target));
      continue;
    }
    if (!st.isFile()) return inPlace(target);
    break;
  }
  await mkdir(path.dirname(target), { recursive: true });
  const tmp = tempNameFor(target);
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
