/**
 * Lexically cleans a container path: the result is always absolute, has no `.`/`..`/empty segments and
 * never rises above "/" (`..` at the root is dropped). `"/a/./b/../c/"` → `"/a/c"`, `"x"` → `"/x"`.
 */
export function cleanContainerPath(p: string): string {
  if (isCleanContainerPath(p)) return p; // most paths already are: no split and join
  const out: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") out.pop();
    else out.push(seg);
  }
  return "/" + out.join("/");
}

/** True when `p` is already what {@link cleanContainerPath} makes of it. */
function isCleanContainerPath(p: string): boolean {
  if (p.charCodeAt(0) !== 0x2f) return false;
  if (p.length === 1) return true;
  return !(
    p.endsWith("/") ||
    p.endsWith("/.") ||
    p.endsWith("/..") ||
    p.includes("//") ||
    p.includes("/./") ||
    p.includes("/../")
  );
}

/**
 * True when the relative or absolute archive name `name` climbs above its starting directory through
 * `..` segments (`"../x"`, `"a/../../x"`). Leading slashes count as re-rooting, not escaping.
 */
export function escapesRoot(name: string): boolean {
  let depth = 0;
  for (const seg of name.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (depth === 0) return true;
      depth--;
    } else depth++;
  }
  return false;
}

/** Parent of a cleaned container path ("/" for "/" and for top-level entries). */
export function containerDirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

/** Last segment of a cleaned container path ("" for "/"). */
export function containerBasename(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}

/** Joins a cleaned container directory and a single child name. */
export function containerJoin(dir: string, name: string): string {
  return dir === "/" ? "/" + name : dir + "/" + name;
}

/** True when `p` equals `dir` or lies below it (both cleaned container paths). */
export function isWithin(p: string, dir: string): boolean {
  return dir === "/" || p === dir || p.startsWith(dir + "/");
}

/**
 * Compares two strings by Unicode code point, which equals the bytewise order of their UTF-8 encodings
 * (plain `<` compares UTF-16 code units and misorders astral characters against U+E000–U+FFFF).
 */
export function compareBytewise(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
        y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
      }
      return x - y;
    }
  }
  return a.length - b.length;
}
