/**
 * Matching a .dockerignore pattern's regular expression without backtracking: the RegExp source that
 * compilePattern builds (moby's, which Go runs with RE2 in linear time) becomes a small automaton run
 * over the path's units, in time proportional to path length x pattern length. A JS RegExp
 * backtracks exponentially on many `**` in a row against a deep path.
 */

/** A compiled JS regular expression and whether it runs in unicode (`u`) mode. */
export interface JsRegExp {
  re: RegExp;
  unicode: boolean;
}

/** The JS source of a Go-syntax source from {@link compilePattern}: Go's `.` excludes only \n. */
export const toJsSource = (goSource: string): string => goSource.replace(/(^|[^\\])\.\*/g, "$1[^\\n]*");

export function toJsRegExp(goSource: string): JsRegExp {
  // The generated sources only use constructs with the same meaning in JS, except that Go's `.`
  // excludes only \n.
  const js = toJsSource(goSource);
  try {
    return { re: new RegExp(js, "u"), unicode: true };
  } catch {
    return { re: new RegExp(js), unicode: false };
  }
}

/**
 * One state of the automaton a pattern's regular expression compiles to. A state's successor is the
 * next index; the index after the last state accepts.
 */
export type NfaState =
  /** Consumes one unit passing `test`. */
  | { kind: "unit"; test: (u: string) => boolean }
  /** `x*`: consumes any number of units passing `test`, then moves on. */
  | { kind: "loop"; test: (u: string) => boolean }
  /** Entry of the group a mid-pattern `**` becomes: skips it (to index + 2) or enters it (index + 1). */
  | { kind: "split" }
  /** Inside that group: any unit but \n stays, and a `/` may also leave the group. */
  | { kind: "group" }
  /** A `^` after the start: passes only at position 0. */
  | { kind: "anchor" };

const isAsciiAlnum = (c: string): boolean => /^[A-Za-z0-9]$/.test(c);
const isJsLineTerminator = (u: string): boolean => u === "\n" || u === "\r" || u === "\u2028" || u === "\u2029";
const unitValue = (u: string): number => u.codePointAt(0) ?? 0;

/** Fixed pieces of the generated sources, with the state(s) each one stands for. */
const FIXED_PIECES: readonly (readonly [string, readonly NfaState[]])[] = [
  ["([^\\n]*/)?", [{ kind: "split" }, { kind: "group" }]],
  ["[^\\n]*", [{ kind: "loop", test: (u) => u !== "\n" }]],
  [".*", [{ kind: "loop", test: (u) => !isJsLineTerminator(u) }]],
  ["[^/]*", [{ kind: "loop", test: (u) => u !== "/" }]],
];

/** Whether `units` holds the text `piece` at index `at`. */
function startsWithAt(units: readonly string[], at: number, piece: string): boolean {
  for (let k = 0; k < piece.length; k++) if (units[at + k] !== piece[k]) return false;
  return true;
}

/** One literal of a character class (a plain or `\`-escaped unit) at `at`, or undefined if unusual. */
function classAtom(units: readonly string[], at: number): { unit: string; next: number } | undefined {
  const c = units[at];
  if (c === undefined || c === "-" || c === "]") return undefined;
  if (c !== "\\") return { unit: c, next: at + 1 };
  const x = units[at + 1];
  if (x === undefined || isAsciiAlnum(x)) return undefined;
  return { unit: x, next: at + 2 };
}

/**
 * A character class `[…]` starting at `at` (ranges of literal units, optionally negated), or
 * undefined for anything else (escapes such as `\d`, a literal `-`, an empty class).
 */
function parseClass(units: readonly string[], at: number): { test: (u: string) => boolean; next: number } | undefined {
  let j = at + 1;
  const negated = units[j] === "^";
  if (negated) j++;
  const ranges: [number, number][] = [];
  while (units[j] !== "]" || ranges.length === 0) {
    const lo = classAtom(units, j);
    if (!lo) return undefined;
    j = lo.next;
    let hi = lo;
    if (units[j] === "-") {
      const h = classAtom(units, j + 1);
      if (!h) return undefined;
      hi = h;
      j = h.next;
    }
    ranges.push([unitValue(lo.unit), unitValue(hi.unit)]);
  }
  const test = (u: string): boolean => {
    const v = unitValue(u);
    return ranges.some(([lo, hi]) => lo <= v && v <= hi) !== negated;
  };
  return { test, next: j + 1 };
}

/** The state for the single-unit atom at `at` (literal, escape or class) and the index after it. */
function parseAtom(units: readonly string[], at: number): { state: NfaState; next: number } | undefined {
  const c = units[at] as string;
  if (c === "[") {
    const cls = parseClass(units, at);
    return cls && { state: { kind: "unit", test: cls.test }, next: cls.next };
  }
  if (c === "\\") {
    const x = units[at + 1];
    if (x === undefined || isAsciiAlnum(x)) return undefined;
    return { state: { kind: "unit", test: (u) => u === x }, next: at + 2 };
  }
  if ("$().*+?{}|".includes(c)) return undefined;
  return { state: { kind: "unit", test: (u) => u === c }, next: at + 1 };
}

/**
 * Compiles the JS source of a pattern's regular expression (`^…$`) into automaton states, reading
 * it in the units the RegExp uses (code points in unicode mode, else UTF-16 code units). Returns
 * undefined for sources using anything beyond the constructs patterns normally produce; those keep
 * using the RegExp.
 */
export function compileNfa(jsSource: string, unicode: boolean): NfaState[] | undefined {
  const units = unicode ? Array.from(jsSource) : jsSource.split("");
  if (units[0] !== "^" || units[units.length - 1] !== "$") return undefined;
  const body = units.slice(1, -1);
  const states: NfaState[] = [];
  for (let at = 0; at < body.length;) {
    const fixed = FIXED_PIECES.find(([piece]) => startsWithAt(body, at, piece));
    if (fixed) {
      states.push(...fixed[1]);
      at += fixed[0].length;
    } else if (body[at] === "^") {
      states.push({ kind: "anchor" });
      at++;
    } else {
      const atom = parseAtom(body, at);
      // A quantifier after an atom only comes from odd patterns such as `[a*]`.
      if (!atom || "*?+{".includes(body[atom.next] ?? "-")) return undefined;
      states.push(atom.state);
      at = atom.next;
    }
  }
  return states;
}

/**
 * Runs the automaton over `units` (a Thompson simulation: time linear in units × states, where a
 * backtracking RegExp is exponential in the number of `**`). True when the automaton accepts some
 * prefix `units[0:k]` with `checkpoint(k)`.
 */
export function runNfa(
  states: readonly NfaState[],
  units: readonly string[],
  checkpoint: (k: number) => boolean,
): boolean {
  const accept = states.length;
  const mark = new Uint32Array(accept + 1);
  let generation = 1;
  let current: number[] = [];
  const add = (list: number[], from: number, pos: number): void => {
    const stack = [from];
    for (let s = stack.pop(); s !== undefined; s = stack.pop()) {
      if (mark[s] === generation) continue;
      mark[s] = generation;
      list.push(s);
      const st = states[s];
      if (st?.kind === "loop") stack.push(s + 1);
      else if (st?.kind === "split") stack.push(s + 2, s + 1);
      else if (st?.kind === "anchor" && pos === 0) stack.push(s + 1);
    }
  };
  add(current, 0, 0);
  for (let k = 0; ; k++) {
    if (checkpoint(k) && mark[accept] === generation) return true;
    const u = units[k];
    if (u === undefined || current.length === 0) return false;
    generation++;
    const next: number[] = [];
    for (const s of current) {
      const st = states[s];
      if (st === undefined) continue;
      if (st.kind === "unit" && st.test(u)) add(next, s + 1, k + 1);
      else if (st.kind === "loop" && st.test(u)) add(next, s, k + 1);
      else if (st.kind === "group") {
        if (u !== "\n") add(next, s, k + 1);
        if (u === "/") add(next, s + 1, k + 1);
      }
    }
    current = next;
  }
}
