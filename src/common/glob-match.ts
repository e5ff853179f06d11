import { KilnError } from "./errors.js";

/**
 * Thrown by {@link globMatch} and {@link validateGlob} for a malformed pattern (Go
 * `filepath.ErrBadPattern`); code `GLOB_INVALID`.
 */
export class BadPatternError extends KilnError {
  /** The malformed pattern. */
  readonly pattern: string;
  constructor(pattern: string, reason: string) {
    super("GLOB_INVALID", `invalid pattern ${JSON.stringify(pattern)}: ${reason}`);
    this.pattern = pattern;
  }
}

/** Internal: a syntax error found while scanning, before the pattern text is attached. */
class Fault {
  constructor(readonly reason: string) {}
}

const TRAILING_BACKSLASH = "trailing backslash";

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
  if (chunk.length === 0) throw new Fault("unterminated character class");
  if (chunk[0] === "-" || chunk[0] === "]") throw new Fault(`unescaped ${JSON.stringify(chunk[0])} in character class`);
  let c = chunk;
  if (c[0] === "\\") {
    c = c.slice(1);
    if (c.length === 0) throw new Fault(TRAILING_BACKSLASH);
  }
  const r = c[0] as string;
  const rest = c.slice(1);
  if (rest.length === 0) throw new Fault("unterminated character class");
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
          if (chunk.length === 0) throw new Fault(TRAILING_BACKSLASH);
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
 * Go `path/filepath.Match` on Unix: `*` (not across `/`), `?` (not `/`), `[a-z]`/`[^…]` classes and
 * `\` escapes; the whole name must match. Throws {@link BadPatternError} for a malformed pattern
 * (like Go, the whole pattern is checked whenever the result is false).
 */
export function globMatch(pattern: string, name: string): boolean {
  try {
    return match(Array.from(pattern), Array.from(name));
  } catch (e) {
    if (e instanceof Fault) throw new BadPatternError(pattern, e.reason);
    throw e;
  }
}

/** Throws {@link BadPatternError} unless `pattern` is a well-formed Go `filepath.Match` pattern. */
export function validateGlob(pattern: string): void {
  // Matching the empty name fails for every pattern that is not all stars, and a failed match checks
  // the syntax of the whole pattern (Go does the same before returning false).
  globMatch(pattern, "");
}

function match(pIn: Chars, nIn: Chars): boolean {
  let p = pIn;
  let n = nIn;
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
