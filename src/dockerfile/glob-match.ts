/** Thrown by {@link globMatch} for a malformed pattern (Go `filepath.ErrBadPattern`). */
export class BadPatternError extends Error {
  constructor() {
    super("syntax error in pattern");
    this.name = "BadPatternError";
  }
}

type Chars = string[];

function scanChunk(p: Chars): { star: boolean; chunk: Chars; rest: Chars } {
  let star = false;
  let i0 = 0;
  while (i0 < p.length && p[i0] === "*") {
    i0++;
    star = true;
  }
  const pattern = p.slice(i0);
  let inrange = false;
  let i = 0;
  scan: for (; i < pattern.length; i++) {
    switch (pattern[i]) {
      case "\\":
        if (i + 1 < pattern.length) i++;
        break;
      case "[":
        inrange = true;
        break;
      case "]":
        inrange = false;
        break;
      case "*":
        if (!inrange) break scan;
        break;
    }
  }
  return { star, chunk: pattern.slice(0, i), rest: pattern.slice(i) };
}

function getEsc(chunk: Chars): { r: string; rest: Chars } {
  if (chunk.length === 0 || chunk[0] === "-" || chunk[0] === "]") throw new BadPatternError();
  let c = chunk;
  if (c[0] === "\\") {
    c = c.slice(1);
    if (c.length === 0) throw new BadPatternError();
  }
  const r = c[0] as string;
  const rest = c.slice(1);
  if (rest.length === 0) throw new BadPatternError();
  return { r, rest };
}

/** Returns the remaining name after matching `chunk` at its start, or null; throws on bad syntax. */
function matchChunk(chunkIn: Chars, sIn: Chars): Chars | null {
  let chunk = chunkIn;
  let s = sIn;
  let failed = false;
  while (chunk.length > 0) {
    if (!failed && s.length === 0) failed = true;
    switch (chunk[0]) {
      case "[": {
        let r = "";
        if (!failed) {
          r = s[0] as string;
          s = s.slice(1);
        }
        chunk = chunk.slice(1);
        let negated = false;
        if (chunk.length > 0 && chunk[0] === "^") {
          negated = true;
          chunk = chunk.slice(1);
        }
        let match = false;
        let nrange = 0;
        for (;;) {
          if (chunk.length > 0 && chunk[0] === "]" && nrange > 0) {
            chunk = chunk.slice(1);
            break;
          }
          const lo = getEsc(chunk);
          chunk = lo.rest;
          let hi = lo.r;
          if (chunk[0] === "-") {
            const h = getEsc(chunk.slice(1));
            hi = h.r;
            chunk = h.rest;
          }
          const cp = (x: string): number => x.codePointAt(0) ?? 0;
          if (!failed && cp(lo.r) <= cp(r) && cp(r) <= cp(hi)) match = true;
          nrange++;
        }
        if (match === negated) failed = true;
        break;
      }
      case "?":
        if (!failed) {
          if (s[0] === "/") failed = true;
          s = s.slice(1);
        }
        chunk = chunk.slice(1);
        break;
      default:
        if (chunk[0] === "\\") {
          chunk = chunk.slice(1);
          if (chunk.length === 0) throw new BadPatternError();
        }
        if (!failed) {
          if (chunk[0] !== s[0]) failed = true;
          s = s.slice(1);
        }
        chunk = chunk.slice(1);
    }
  }
  return failed ? null : s;
}

/**
 * Go `path/filepath.Match` on Unix: `*` (not across `/`), `?`, `[a-z]`/`[^…]` classes and `\`
 * escapes; the whole name must match. Throws {@link BadPatternError} for a malformed pattern.
 */
export function globMatch(pattern: string, name: string): boolean {
  let p: Chars = Array.from(pattern);
  let n: Chars = Array.from(name);
  outer: while (p.length > 0) {
    const { star, chunk, rest } = scanChunk(p);
    p = rest;
    if (star && chunk.length === 0) return !n.includes("/");
    const t = matchChunk(chunk, n);
    if (t !== null && (t.length === 0 || p.length > 0)) {
      n = t;
      continue;
    }
    if (star) {
      for (let i = 0; i < n.length && n[i] !== "/"; i++) {
        const t2 = matchChunk(chunk, n.slice(i + 1));
        if (t2 !== null) {
          if (p.length === 0 && t2.length > 0) continue;
          n = t2;
          continue outer;
        }
      }
    }
    while (p.length > 0) {
      const r = scanChunk(p);
      p = r.rest;
      matchChunk(r.chunk, []);
    }
    return false;
  }
  return n.length === 0;
}

/** Go `path.Clean` (slash-separated, lexical). */
export function cleanPath(p: string): string {
  if (p === "") return ".";
  const rooted = p.startsWith("/");
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!rooted) out.push("..");
      continue;
    }
    out.push(part);
  }
  const joined = out.join("/");
  if (rooted) return "/" + joined;
  return joined === "" ? "." : joined;
}
