import { KilnError } from "../common/errors.js";

/**
 * Reports whether `name` matches the shell pattern `pattern` with Go `filepath.Match` semantics on a
 * single path segment: `*` any run of characters, `?` one character, `[...]`/`[^...]` classes with
 * ranges, `\` escapes. Throws `GLOB_INVALID` for a malformed pattern (Go's ErrBadPattern).
 */
export function globMatch(pattern: string, name: string): boolean {
  const p = Array.from(pattern);
  validatePattern(p, pattern);
  return matchFrom(p, 0, Array.from(name), 0);
}

/** Throws `GLOB_INVALID` unless `pattern` is a well-formed Go `filepath.Match` pattern. */
export function validateGlob(pattern: string): void {
  validatePattern(Array.from(pattern), pattern);
}

function bad(pattern: string, why: string): KilnError {
  return new KilnError("GLOB_INVALID", `invalid pattern ${JSON.stringify(pattern)}: ${why}`);
}

function validatePattern(p: string[], raw: string): void {
  let i = 0;
  while (i < p.length) {
    const c = p[i];
    if (c === "\\") {
      if (i + 1 >= p.length) throw bad(raw, "trailing backslash");
      i += 2;
    } else if (c === "[") {
      const r = matchClass(p, i, "", raw);
      i = r.next;
    } else i++;
  }
}

function matchFrom(p: string[], pi: number, n: string[], ni: number): boolean {
  while (pi < p.length) {
    const c = p[pi];
    if (c === "*") {
      while (p[pi] === "*") pi++;
      if (pi === p.length) return true;
      for (let k = ni; k <= n.length; k++) if (matchFrom(p, pi, n, k)) return true;
      return false;
    }
    const ch = n[ni];
    if (ch === undefined) return false;
    if (c === "?") {
      pi++;
    } else if (c === "[") {
      const r = matchClass(p, pi, ch, "");
      if (!r.matched) return false;
      pi = r.next;
    } else {
      const lit = c === "\\" ? p[++pi] : c;
      if (lit !== ch) return false;
      pi++;
    }
    ni++;
  }
  return ni === n.length;
}

/** Parses the class starting at p[start] === "[" and tests `ch` against it. */
function matchClass(p: string[], start: number, ch: string, raw: string): { matched: boolean; next: number } {
  let i = start + 1;
  let negated = false;
  if (p[i] === "^") {
    negated = true;
    i++;
  }
  let matched = false;
  let ranges = 0;
  for (;;) {
    if (p[i] === "]" && ranges > 0) {
      i++;
      break;
    }
    const lo = classChar(p, i, raw);
    i = lo.next;
    let hi = lo.ch;
    if (p[i] === "-") {
      const h = classChar(p, i + 1, raw);
      hi = h.ch;
      i = h.next;
    }
    const code = ch.codePointAt(0) ?? -1;
    if ((lo.ch.codePointAt(0) ?? 0) <= code && code <= (hi.codePointAt(0) ?? 0)) matched = true;
    ranges++;
  }
  return { matched: matched !== negated, next: i };
}

function classChar(p: string[], i: number, raw: string): { ch: string; next: number } {
  let c = p[i];
  if (c === undefined) throw bad(raw, "unterminated character class");
  if (c === "-" || c === "]") throw bad(raw, `unescaped ${JSON.stringify(c)} in character class`);
  if (c === "\\") {
    c = p[i + 1];
    if (c === undefined) throw bad(raw, "trailing backslash");
    return { ch: c, next: i + 2 };
  }
  return { ch: c, next: i + 1 };
}
