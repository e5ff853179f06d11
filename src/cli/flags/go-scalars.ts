/**
 * Scalar parsers with Go's exact accepted syntax (strconv.ParseBool, strconv.ParseInt base 0,
 * time.ParseDuration), because kaniko users write values in those forms. Each returns `undefined`
 * for invalid input; callers turn that into a message naming the flag.
 */

export { parseGoBool } from "../../common/go-bool.js";

/** Checks Go's rule for `_` in base-prefixed literals: only between digits or after the prefix. */
function underscoresOk(s: string): boolean {
  if (!s.includes("_")) return true;
  let saw: "^" | "0" | "_" | "!" = "^";
  let i = 0;
  let hex = false;
  if (s.length >= 2 && s[0] === "0") {
    const p = s[1]?.toLowerCase();
    if (p === "x" || p === "o" || p === "b") {
      hex = p === "x";
      i = 2;
      saw = "0";
    }
  }
  for (; i < s.length; i++) {
    const c = s[i] ?? "";
    if (/[0-9]/.test(c) || (hex && /[a-fA-F]/.test(c))) {
      saw = "0";
      continue;
    }
    if (c === "_") {
      if (saw !== "0") return false;
      saw = "_";
      continue;
    }
    if (saw === "_") return false;
    saw = "!";
  }
  return saw !== "_";
}

/**
 * Parses an integer like Go's strconv.ParseInt(s, 0, 64) (what pflag's int flags use): optional
 * sign, then decimal, `0x` hex, `0o`/leading-`0` octal or `0b` binary, `_` separators allowed only
 * with a base prefix. Values outside the JS safe-integer range are rejected.
 */
export function parseGoInt(s: string): number | undefined {
  let body = s;
  let sign = 1;
  if (body.startsWith("+") || body.startsWith("-")) {
    if (body.startsWith("-")) sign = -1;
    body = body.slice(1);
  }
  if (body === "") return undefined;
  let base = 10;
  let digits = body;
  const prefixed = body.length >= 2 && body[0] === "0";
  if (prefixed) {
    const p = body[1]?.toLowerCase();
    if (p === "x") [base, digits] = [16, body.slice(2)];
    else if (p === "o") [base, digits] = [8, body.slice(2)];
    else if (p === "b") [base, digits] = [2, body.slice(2)];
    else [base, digits] = [8, body.slice(1)];
  }
  if (digits.includes("_")) {
    if (!prefixed || !underscoresOk(body)) return undefined;
    digits = digits.replace(/_/g, "");
  }
  const alphabet = "0123456789abcdef".slice(0, base);
  if (digits === "" || ![...digits.toLowerCase()].every((c) => alphabet.includes(c))) return undefined;
  const n = sign * parseInt(digits, base);
  return Number.isSafeInteger(n) ? n : undefined;
}

const UNIT_NS: Readonly<Record<string, number>> = Object.freeze({
  ns: 1,
  us: 1e3,
  "\u00b5s": 1e3,
  "\u03bcs": 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
});

const MAX_NS = 2 ** 63 - 1;

/**
 * Parses a duration like Go's time.ParseDuration ("336h", "1h30m", "1.5h", "90s", "-2m", "0") and
 * returns whole milliseconds (truncated toward zero). Units: ns, us/µs, ms, s, m, h.
 */
export function parseGoDurationMs(s: string): number | undefined {
  let rest = s;
  let sign = 1;
  if (rest.startsWith("+") || rest.startsWith("-")) {
    if (rest.startsWith("-")) sign = -1;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0;
  if (rest === "") return undefined;
  let totalNs = 0;
  const part = /^([0-9]*)(?:\.([0-9]*))?([^0-9.]+)/;
  while (rest !== "") {
    const m = part.exec(rest);
    if (!m) return undefined;
    const [whole, intPart = "", fracPart, unit = ""] = m;
    if (intPart === "" && (fracPart === undefined || fracPart === "")) return undefined;
    const unitNs = UNIT_NS[unit];
    if (unitNs === undefined) return undefined;
    const value = Number(`${intPart || "0"}.${fracPart ?? ""}0`);
    totalNs += value * unitNs;
    if (totalNs > MAX_NS) return undefined;
    rest = rest.slice(whole.length);
  }
  return Math.trunc((sign * totalNs) / 1e6) + 0;
}
