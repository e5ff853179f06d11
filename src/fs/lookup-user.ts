import { readFile } from "node:fs/promises";
import { KilnError } from "../common/errors.js";
import { resolveInRoot } from "../common/resolve-in-root.js";

/** A resolved `USER` specification. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Home directory from /etc/passwd, "/" when the user has no entry. */
  home: string;
  /** Supplementary group ids: groups in /etc/group listing the user by name, in file order. */
  groups: number[];
  /** Whether /etc/passwd has an entry for the user (false for a bare numeric uid it does not list). */
  inPasswd: boolean;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}
interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const NUMERIC = /^[0-9]+$/;

/** The largest valid uid or gid: 4294967295 is (uid_t)-1, "no change" to the kernel; above it wraps to 0. */
export const MAX_ID = 4294967294;

/** Returns `id`, or throws USER_ID_INVALID when it is above {@link MAX_ID} (`what` says whose id it is). */
function validId(id: number, what: string): number {
  if (!Number.isSafeInteger(id) || id > MAX_ID) {
    throw new KilnError(
      "USER_ID_INVALID",
      `${what} is ${id > Number.MAX_SAFE_INTEGER ? "too large" : String(id)}: ids above ${MAX_ID} are not valid (they would wrap around to root)`,
    );
  }
  return id;
}

/**
 * Resolves a Dockerfile `USER` spec (`name`, `uid`, `uid:gid`, `name:group`, `uid:groupname`) against
 * /etc/passwd and /etc/group inside `root` (read through {@link resolveInRoot}). Numeric ids need no
 * entry; an unknown user or group name throws `USER_NOT_FOUND`; a uid or gid above {@link MAX_ID} (in the
 * spec, or in the entry or groups it selects) throws `USER_ID_INVALID`.
 */
export async function lookupUser(root: string, spec: string): Promise<ResolvedUser> {
  const colon = spec.indexOf(":");
  const userPart = colon < 0 ? spec : spec.slice(0, colon);
  const groupPart = colon < 0 ? undefined : spec.slice(colon + 1);
  if (userPart === "") throw new KilnError("USER_NOT_FOUND", `invalid user spec ${JSON.stringify(spec)}: empty user`);
  const passwd = parsePasswd(await readInRoot(root, "/etc/passwd"));
  let user: PasswdEntry | undefined;
  let uid: number;
  if (NUMERIC.test(userPart)) {
    uid = validId(Number(userPart), `the uid in USER ${JSON.stringify(spec)}`);
    user = passwd.find((e) => e.uid === uid);
  } else {
    user = passwd.find((e) => e.name === userPart);
    if (user === undefined) {
      throw new KilnError(
        "USER_NOT_FOUND",
        `user ${JSON.stringify(userPart)} not found in /etc/passwd of the image; create it in an earlier step or use a numeric uid`,
      );
    }
    uid = validId(user.uid, `the uid of user ${JSON.stringify(userPart)} in /etc/passwd of the image`);
  }
  const groupFile = parseGroup(await readInRoot(root, "/etc/group"));
  let gid = user?.gid ?? 0;
  if (groupPart === undefined || groupPart === "") {
    if (user !== undefined) validId(gid, `the gid of user ${JSON.stringify(user.name)} in /etc/passwd of the image`);
  } else {
    if (NUMERIC.test(groupPart)) {
      gid = validId(Number(groupPart), `the gid in USER ${JSON.stringify(spec)}`);
    } else {
      const g = groupFile.find((e) => e.name === groupPart);
      if (g === undefined) {
        throw new KilnError(
          "USER_NOT_FOUND",
          `group ${JSON.stringify(groupPart)} not found in /etc/group of the image; create it or use a numeric gid`,
        );
      }
      gid = validId(g.gid, `the gid of group ${JSON.stringify(groupPart)} in /etc/group of the image`);
    }
  }
  const groups: number[] = [];
  const name = user?.name;
  if (name !== undefined) {
    for (const g of groupFile) {
      if (!g.members.includes(name) || groups.includes(g.gid)) continue;
      groups.push(
        validId(g.gid, `the gid of group ${JSON.stringify(g.name)} (listing ${name}) in /etc/group of the image`),
      );
    }
  }
  return { uid, gid, home: user?.home || "/", groups, inPasswd: user !== undefined };
}

async function readInRoot(root: string, p: string): Promise<string> {
  try {
    return await readFile(await resolveInRoot(root, p, { followFinal: true }), "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR") return "";
    throw e;
  }
}

function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const f = line.split(":");
    if (f.length < 4 || !NUMERIC.test(f[2] ?? "") || !NUMERIC.test(f[3] ?? "")) continue;
    out.push({ name: f[0] ?? "", uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? "" });
  }
  return out;
}

function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const f = line.split(":");
    if (f.length < 3 || !NUMERIC.test(f[2] ?? "")) continue;
    const members = (f[3] ?? "")
      .split(",")
      .map((m) => m.trim())
      .filter((m) => m !== "");
    out.push({ name: f[0] ?? "", gid: Number(f[2]), members });
  }
  return out;
}
