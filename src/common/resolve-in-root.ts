import { lstat, readlink } from "node:fs/promises";
import * as path from "node:path";
import { KilnError } from "./errors.js";

/** Maximum number of symlinks followed while resolving one path (Linux's MAXSYMLINKS). */
export const MAX_LINK_HOPS = 40;

/** Options of {@link resolveInRoot}. */
export interface ResolveOptions {
  /** Follow a symlink in the final component too (default false: the link itself is addressed). */
  followFinal?: boolean;
  /**
   * Called with the container path of each component before it is looked at on disk (the final one too,
   * followed or not), while its parents exist: a root laid out lazily creates it there first.
   */
  visit?: (containerPath: string) => void;
}

/**
 * Maps a container path to a host path that is guaranteed to lie inside `root`, resolving symlinks the
 * way the container would see them: absolute link targets are re-rooted at `root`, `..` is clamped at the
 * root, the final component is followed only with `followFinal`, and more than 40 hops throw `FS_LOOP`.
 * Components that do not exist are kept lexically (the rest of the path is not resolved further).
 */
export async function resolveInRoot(root: string, containerPath: string, opts: ResolveOptions = {}): Promise<string> {
  const hostRoot = path.resolve(root);
  const resolved: string[] = [];
  // Pending components, consumed from the end (stack), so prepend = push in reverse.
  const pending = splitReversed(containerPath);
  let hops = 0;
  let missing = false;
  while (pending.length > 0) {
    const seg = pending.pop() as string;
    if (seg === ".") continue;
    if (seg === "..") {
      resolved.pop();
      missing = false;
      continue;
    }
    resolved.push(seg);
    const isFinal = pending.length === 0;
    if (!missing && opts.visit) opts.visit(`/${resolved.join("/")}`);
    if (missing || (isFinal && !opts.followFinal)) continue;
    const host = path.join(hostRoot, ...resolved);
    let target: string;
    try {
      const st = await lstat(host);
      if (!st.isSymbolicLink()) continue;
      target = await readlink(host);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") {
        missing = true;
        continue;
      }
      throw new KilnError("FS_RESOLVE", `cannot resolve ${containerPath} inside ${hostRoot}: ${String(e)}`, {
        cause: e,
      });
    }
    if (++hops > MAX_LINK_HOPS) {
      throw new KilnError(
        "FS_LOOP",
        `too many levels of symbolic links resolving ${containerPath} inside ${hostRoot} (more than ${MAX_LINK_HOPS}); check the image for a symlink loop`,
      );
    }
    resolved.pop();
    if (target.startsWith("/")) resolved.length = 0;
    pending.push(...splitReversed(target));
  }
  return resolved.length === 0 ? hostRoot : path.join(hostRoot, ...resolved);
}

function splitReversed(p: string): string[] {
  return p
    .split("/")
    .filter((s) => s !== "")
    .reverse();
}

/** Container path ("/a/b") of a host path inside `root`; throws `FS_OUTSIDE_ROOT` if it is not inside. */
export function toContainerPath(root: string, hostPath: string): string {
  const rel = path.relative(path.resolve(root), hostPath);
  if (rel === "") return "/";
  if ((rel.startsWith("..") && (rel === ".." || rel.startsWith("../"))) || path.isAbsolute(rel)) {
    throw new KilnError("FS_OUTSIDE_ROOT", `${hostPath} is not inside the root ${root}`);
  }
  return "/" + rel.split(path.sep).join("/");
}
