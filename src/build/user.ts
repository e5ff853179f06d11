import { MAX_ID, lookupUser } from "../fs/index.js";

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
  const { uid, gid, groups, home } = await lookupIdentity(root, user);
  // runc/BuildKit: /etc/group adds supplementary groups only to `USER name`; `USER name:group` runs with just that group.
  return { uid, gid, groups: user?.includes(":") ? [] : groups, home };
}

async function lookupIdentity(
  root: string | undefined,
  user: string | undefined,
): Promise<Identity & { inPasswd: boolean }> {
  const spec = user && user.length > 0 ? user : "0";
  if (!root) {
    const m = /^(\d+)(?::(\d+))?$/.exec(spec);
    // Ids above MAX_ID (they wrap to root) go on to lookupUser, which refuses them.
    if (m && Number(m[1]) <= MAX_ID && Number(m[2] ?? m[1]) <= MAX_ID)
      return { uid: Number(m[1]), gid: Number(m[2] ?? m[1]), groups: [], home: "/", inPasswd: false };
  }
  try {
    const r = await lookupUser(root ?? "/nonexistent", spec);
    return { uid: r.uid, gid: r.gid, groups: r.groups, home: r.home, inPasswd: r.inPasswd };
  } catch (e) {
    // Docker resolves "root" to uid 0 even when the image has no /etc/passwd.
    if (/^root(:(root|0))?$/.test(spec)) return { uid: 0, gid: 0, groups: [], home: "/root", inPasswd: false };
    throw e;
  }
}

/**
 * The owner BuildKit gives files a step creates as USER (WORKDIR, `--chown`): like a RUN's identity,
 * except that a bare numeric uid without a passwd entry gets gid = uid (BuildKit's file operations do
 * this; a process started as such a uid runs with gid 0).
 */
export async function resolveFileOwner(root: string, user: string | undefined): Promise<Identity> {
  const { inPasswd, ...id } = await lookupIdentity(root, user);
  const spec = user && user.length > 0 ? user : "0";
  if (/^\d+$/.test(spec) && id.uid !== 0 && !inPasswd) return { ...id, gid: id.uid };
  return id;
}
