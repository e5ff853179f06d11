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

/**
 * The pattern and the name as code points. The matcher walks them by index: copying the rest of the
 * pattern per character made matching quadratic in the pattern length.
 */
type Chars = readonly string[];

/** A chunk of the pattern: `[start, end)` after the leading stars, and where the next one begins. */
interface Chunk {
  star: boolean;
  start: number;
  end: number;
}

/** Go `scanChunk`: the stars at `from`, then everything up to the next `*` outside a class. */
function scanChunk(p: Chars, from: number): Chunk {
  let star = false;
  let start = from;
  while (start < p.length && p[start] === "*") {
    start++;
    star = true;
  }
  let inrange = false;
  let i = start;
  scan: for (; i < p.length; i++) {
    switch (p[i]) {
      case "\\":
        if (i + 1 < p.length) i++;
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
  return { star, start, end: i };
}

/** Go `getEsc`: the (possibly escaped) class character at `i`, and the index after it. */
function getEsc(p: Chars, i: number, end: number): { r: string; next: number } {
  if (i >= end) throw new Fault("unterminated character class");
  if (p[i] === "-" || p[i] === "]") throw new Fault(`unescaped ${JSON.stringify(p[i])} in character class`);
  let at = i;
  if (p[at] === "\\") {
    at++;
    if (at >= end) throw new Fault(TRAILING_BACKSLASH);
  }
  const r = p[at] as string;
  if (at + 1 >= end) throw new Fault("unterminated character class");
  return { r, next: at + 1 };
}

const codePoint = (x: string): number => x.codePointAt(0) ?? 0;

/**
 * Matches the character class starting after its `[` at `i` against `r` (undefined once the match
 * has failed: the class is then only checked for syntax). Returns the index after the class.
 */
function matchClass(p: Chars, i: number, end: number, r: string | undefined): { next: number; match: boolean } {
  let at = i;
  let negated = false;
  if (at < end && p[at] === "^") {
    negated = true;
    at++;
  }
  let match = false;
  for (let nrange = 0; ; nrange++) {
    if (at < end && p[at] === "]" && nrange > 0) return { next: at + 1, match: match !== negated };
    const lo = getEsc(p, at, end);
    at = lo.next;
    let hi = lo.r;
    if (at < end && p[at] === "-") {
      const h = getEsc(p, at + 1, end);
      hi = h.r;
      at = h.next;
    }
    if (r !== undefined && codePoint(lo.r) <= codePoint(r) && codePoint(r) <= codePoint(hi)) match = true;
  }
}

/**
 * Go `matchChunk`: matches the chunk `[cs, ce)` of `p` at the start of `n[ns:]`. Returns the index
 * in `n` after the match, or -1; throws a Fault on bad syntax (the whole chunk is always checked).
 */
function matchChunk(p: Chars, cs: number, ce: number, n: Chars, ns: number): number {
  let i = cs;
  let at = ns;
  let failed = false;
  while (i < ce) {
    if (!failed && at >= n.length) failed = true;
    const c = p[i] as string;
    if (c === "[") {
      const r = failed ? undefined : (n[at++] as string);
      const cls = matchClass(p, i + 1, ce, r);
      i = cls.next;
      if (!cls.match) failed = true;
    } else if (c === "?") {
      if (!failed && n[at++] === "/") failed = true;
      i++;
    } else {
      if (c === "\\") {
        i++;
        if (i >= ce) throw new Fault(TRAILING_BACKSLASH);
      }
      if (!failed && p[i] !== n[at++]) failed = true;
      i++;
    }
  }
  return failed ? -1 : at;
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

/** Go `filepath.Match` over code points, walking the pattern chunk by chunk. */
function match(p: Chars, n: Chars): boolean {
  let pi = 0;
  let ni = 0;
  outer: while (pi < p.length) {
    const { star, start, end } = scanChunk(p, pi);
    pi = end;
    if (star && start === end) return !n.slice(ni).includes("/");
    const t = matchChunk(p, start, end, n, ni);
    if (t >= 0 && (t === n.length || pi < p.length)) {
      ni = t;
      continue;
    }
    if (star) {
      for (let i = ni; i < n.length && n[i] !== "/"; i++) {
        const t2 = matchChunk(p, start, end, n, i + 1);
        if (t2 >= 0) {
          if (pi === p.length && t2 < n.length) continue;
          ni = t2;
          continue outer;
        }
      }
    }
    checkRest(p, pi);
    return false;
  }
  return ni === n.length;
}

/** Go checks the syntax of the rest of the pattern before reporting a mismatch. */
function checkRest(p: Chars, from: number): void {
  for (let pi = from; pi < p.length;) {
    const { start, end } = scanChunk(p, pi);
    pi = end;
    matchChunk(p, start, end, [], 0);
  }
}
