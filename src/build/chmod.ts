import { KilnError } from "../common/errors.js";

/**
 * Parses a `--chmod` value into a function of (source mode, isDir): octal modes replace the
 * permission bits; symbolic modes (`u+x`, `go-w`, `a=rX`, comma-separated) are applied to the
 * source mode like chmod(1) does. Throws CHMOD_INVALID for anything else.
 */
export function parseChmod(spec: string): (mode: number, isDir: boolean) => number {
  if (/^[0-7]{1,4}$/.test(spec)) {
    const m = parseInt(spec, 8);
    return () => m;
  }
  const clauses = spec.split(",");
  const parsed = clauses.map((c) => {
    const m = /^([ugoa]*)([-+=])([rwxXst]*|[ugo])$/.exec(c);
    if (!m) {
      throw new KilnError(
        "CHMOD_INVALID",
        `invalid chmod parameter: '${spec}'. it should be octal string and between 0 and 07777, or symbolic like u+x,go-w`,
      );
    }
    return { who: m[1] || "a", op: m[2] as "+" | "-" | "=", perms: m[3] ?? "" };
  });
  return (mode: number, isDir: boolean) => {
    let out = mode & 0o7777;
    for (const { who, op, perms } of parsed) {
      const execOk = isDir || (out & 0o111) !== 0;
      let bits = 0;
      let mask = 0;
      // `g=u`: copy the permission bits of another class.
      const copied = /^[ugo]$/.test(perms) ? (out >> (perms === "u" ? 6 : perms === "g" ? 3 : 0)) & 0o7 : undefined;
      for (const w of who.includes("a") ? "ugo" : who) {
        const shift = w === "u" ? 6 : w === "g" ? 3 : 0;
        mask |= 0o7 << shift;
        if (copied !== undefined) {
          bits |= copied << shift;
          continue;
        }
        if (perms.includes("r")) bits |= 0o4 << shift;
        if (perms.includes("w")) bits |= 0o2 << shift;
        if (perms.includes("x") || (perms.includes("X") && execOk)) bits |= 0o1 << shift;
        if (perms.includes("s") && w === "u") bits |= 0o4000;
        if (perms.includes("s") && w === "g") bits |= 0o2000;
        if (perms.includes("t") && w === "o") bits |= 0o1000;
      }
      if (op === "+") out |= bits;
      else if (op === "-") out &= ~bits;
      else out = (out & ~mask) | bits;
    }
    return out;
  };
}
