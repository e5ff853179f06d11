import { readFile } from "node:fs/promises";
import { lookupUser, resolveInRoot } from "../fs/index.js";

/** Identity a RUN/COPY/WORKDIR acts as. */
export interface Identity {
  uid: number;
  gid: number;
  groups: number[];
  home: string;
}

/**
 * Resolves the stage's USER against the root's /etc/passwd and /etc/group (empty = root).
 * Numeric ids work without entries; unknown names fail with USER_NOT_FOUND.
 */
export async function resolveIdentity(root: string | undefined, user: string | undefined): Promise<Identity> {
  const spec = user && user.length > 0 ? user : "0";
  if (!root) {
    const m = /^(\d+)(?::(\d+))?$/.exec(spec);
    if (m) return { uid: Number(m[1]), gid: Number(m[2] ?? m[1]), groups: [], home: "/" };
  }
  try {
    const r = await lookupUser(root ?? "/nonexistent", spec);
    return { uid: r.uid, gid: r.gid, groups: r.groups, home: r.home };
  } catch (e) {
    // Docker resolves "root" to uid 0 even when the image has no /etc/passwd.
    if (/^root(:(root|0))?$/.test(spec)) return { uid: 0, gid: 0, groups: [], home: "/root" };
    throw e;
  }
}

/**
 * The owner BuildKit gives files a step creates as USER (WORKDIR, `--chown`): like a RUN's identity,
 * except that a bare numeric uid without a passwd entry gets gid = uid (BuildKit's file operations do
 * this; a process started as such a uid runs with gid 0).
 */
export async function resolveFileOwner(root: string, user: string | undefined): Promise<Identity> {
  const id = await resolveIdentity(root, user);
  const spec = user && user.length > 0 ? user : "0";
  if (/^\d+$/.test(spec) && id.uid !== 0 && !(await hasPasswdEntry(root, id.uid))) return { ...id, gid: id.uid };
  return id;
}

async function hasPasswdEntry(root: string, uid: number): Promise<boolean> {
  try {
    const text = await readFile(await resolveInRoot(root, "/etc/passwd", { followFinal: true }), "utf8");
    return text.split("\n").some((l) => l.split(":")[2] === String(uid));
  } catch {
    return false;
  }
}
