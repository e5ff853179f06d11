import type { BigIntStats } from "node:fs";
import { lstat, mkdir, rmdir, unlink, utimes, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { KilnError, hasCode } from "../common/errors.js";
import { resolveInRoot, toContainerPath } from "../common/resolve-in-root.js";

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/**
 * Resolves a container path to the canonical container path it denotes inside `root`: symlinks are
 * followed as the chrooted command would see them (absolute targets restart at the root, `..` stops at
 * the root), so the result names no symlink and joined to `root` stays inside it. Components that do
 * not exist are kept as written. A thin wrapper over the shared {@link resolveInRoot}.
 * @throws KilnError RUN_MOUNT_TARGET when more than 40 symlinks are followed.
 */
export async function canonicalContainerPath(root: string, containerPath: string): Promise<string> {
  try {
    return toContainerPath(root, await resolveInRoot(root, containerPath, { followFinal: true }));
  } catch (e) {
    if (hasCode(e, "FS_LOOP")) {
      throw new KilnError("RUN_MOUNT_TARGET", `too many symlinks resolving ${containerPath} inside ${root}`, {
        cause: e,
      });
    }
    throw e;
  }
}

/** A path this process created inside a build root, to be removed after the run. */
interface Created {
  hostPath: string;
  dir: boolean;
  /** Identity (device and inode) of the directory it was created in. */
  parent: Identity;
}

/** A directory's device and inode numbers. */
export interface Identity {
  dev: bigint;
  ino: bigint;
}

/**
 * Whether `dir` (a host path inside `root`) is still the directory `was`, reached from `root` without a
 * symlink: "same" when every component below the root is a real directory (lstat) and the last one is
 * `was`; "missing" when a component no longer exists; "changed" otherwise. The command that ran in
 * between may have renamed a parent and put a symlink in its place (`mv /etc /etc.old; ln -s /etc /etc`):
 * a host path computed before the run would then lead out of the root, onto the host's files.
 */
export async function sameDirectory(root: string, dir: string, was: Identity): Promise<"same" | "missing" | "changed"> {
  const rel = path.relative(root, dir);
  if (rel.startsWith("..") || path.isAbsolute(rel)) return "changed";
  let host = root;
  let st: BigIntStats | undefined;
  try {
    for (const comp of rel === "" ? [] : rel.split(path.sep)) {
      host = path.join(host, comp);
      st = await lstat(host, { bigint: true });
      if (!st.isDirectory()) return "changed"; // a symlink, or no longer a directory
    }
    st ??= await lstat(root, { bigint: true });
  } catch (e) {
    if (isMissing(e)) return "missing";
    throw e;
  }
  return st.dev === was.dev && st.ino === was.ino ? "same" : "changed";
}

/**
 * Creates mount targets inside a build root and removes exactly the ones it created afterwards, so
 * that mount points never show up in a layer snapshot. Not safe for concurrent use.
 */
export class MountTargets {
  readonly #root: string;
  readonly #created: Created[] = [];
  /** Directories we added entries to: their times before, and their mtime right after our additions. */
  readonly #parents = new Map<string, { atimeNs: bigint; mtimeNs: bigint; mtimeAfter: bigint; id: Identity }>();

  constructor(root: string) {
    this.#root = root;
  }

  /**
   * Makes sure `containerPath` exists inside the root as a directory (or an empty file when `kind` is
   * "file"), creating missing parents, and returns its canonical container path (symlinks resolved).
   * @throws KilnError RUN_MOUNT_TARGET when an existing component is not a directory.
   */
  async ensure(containerPath: string, kind: "dir" | "file"): Promise<string> {
    const resolved = await canonicalContainerPath(this.#root, containerPath);
    const comps = resolved.split("/").filter((c) => c !== "");
    let host = this.#root;
    for (let i = 0; i < comps.length; i++) {
      host = path.join(host, comps[i] as string);
      const last = i === comps.length - 1;
      const wantDir = !last || kind === "dir";
      try {
        const st = await lstat(host);
        if (wantDir && !st.isDirectory()) {
          throw new KilnError(
            "RUN_MOUNT_TARGET",
            `cannot mount on ${containerPath}: ${host} exists and is not a directory`,
          );
        }
        continue;
      } catch (e) {
        if (!isMissing(e)) throw e;
      }
      const parent = path.dirname(host);
      const before = this.#parents.get(parent) ?? (await lstat(parent, { bigint: true }));
      if (wantDir) await mkdir(host, { mode: 0o755 });
      else await writeFile(host, "", { flag: "wx", mode: 0o644 });
      const after = await lstat(parent, { bigint: true });
      const id = { dev: after.dev, ino: after.ino };
      this.#created.push({ hostPath: host, dir: wantDir, parent: id });
      this.#parents.set(parent, { atimeNs: before.atimeNs, mtimeNs: before.mtimeNs, mtimeAfter: after.mtimeNs, id });
    }
    return resolved;
  }

  /** Host paths created so far, in creation order. */
  get created(): readonly string[] {
    return this.#created.map((c) => c.hostPath);
  }

  /**
   * Removes what {@link ensure} created, deepest first. A directory the command has since filled is
   * kept (its content is the command's output); so is an entry whose parent directory the command
   * moved or replaced (by a symlink, say): the path recorded before the run may no longer lead to it,
   * or may lead out of the root, so it is left where the command put it (inside the root). The
   * returned list names the paths that were kept.
   */
  async cleanup(): Promise<string[]> {
    const kept: string[] = [];
    // Parents whose mtime the command did not change get their original times back afterwards, so that
    // time-based snapshots do not see directories that only held our mount points (Node sets times with
    // about 0.1 µs precision, so nanoseconds may differ).
    const untouched: [string, { atimeNs: bigint; mtimeNs: bigint; id: Identity }][] = [];
    for (const [dir, t] of this.#parents) {
      try {
        if ((await sameDirectory(this.#root, dir, t.id)) !== "same") continue;
        if ((await lstat(dir, { bigint: true })).mtimeNs === t.mtimeAfter) untouched.push([dir, t]);
      } catch (e) {
        if (!isMissing(e)) throw e;
      }
    }
    this.#parents.clear();
    while (this.#created.length > 0) {
      const c = this.#created.pop() as Created;
      const parent = await sameDirectory(this.#root, path.dirname(c.hostPath), c.parent);
      if (parent !== "same") {
        if (parent === "changed") kept.push(c.hostPath);
        continue;
      }
      try {
        if (c.dir) await rmdir(c.hostPath);
        else await unlink(c.hostPath);
      } catch (e) {
        if (!isMissing(e)) kept.push(c.hostPath);
      }
    }
    for (const [dir, t] of untouched) {
      try {
        if ((await sameDirectory(this.#root, dir, t.id)) === "same")
          await utimes(dir, Number(t.atimeNs) / 1e9, Number(t.mtimeNs) / 1e9);
      } catch (e) {
        if (!isMissing(e)) throw e;
      }
    }
    return kept;
  }
}
