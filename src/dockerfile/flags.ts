import { DockerfileError, ErrorCodes } from "./errors.js";
import { suggest } from "./go-strings.js";

/** The kind of value a builder flag takes. */
export type FlagType = "bool" | "string" | "strings";

/** Parsed builder flags of one instruction. */
export interface ParsedFlags {
  strings: Map<string, string>;
  lists: Map<string, string[]>;
  bools: Map<string, boolean>;
}

function flagError(message: string, hint: string): DockerfileError {
  return new DockerfileError(ErrorCodes.flag, message, { hint });
}

/**
 * Parses `--name[=value]` words against the flags an instruction accepts (BuildKit BFlags):
 * unknown, duplicate, valueless and malformed flags throw DockerfileError naming the flag.
 */
export function parseFlags(instruction: string, words: string[], spec: Record<string, FlagType>): ParsedFlags {
  const out: ParsedFlags = { strings: new Map(), lists: new Map(), bools: new Map() };
  const known = Object.keys(spec);
  const seen = new Set<string>();
  for (const word of words) {
    if (!word.startsWith("--")) {
      throw flagError(
        `arg should start with -- : ${word}`,
        `write flags as --name=value before the arguments of ${instruction}`,
      );
    }
    if (word === "--") break;
    const body = word.slice(2);
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    const value = eq < 0 ? undefined : body.slice(eq + 1);
    const type = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (type === undefined) {
      const s = suggest(name, known);
      const hint = s
        ? `did you mean --${s}?`
        : known.length > 0
          ? `${instruction} accepts ${known.map((k) => "--" + k).join(", ")}`
          : `${instruction} takes no flags`;
      throw flagError(`unknown flag: --${name} for ${instruction}`, hint);
    }
    if (seen.has(name) && type !== "strings") {
      throw flagError(`duplicate flag specified: --${name}`, `give --${name} only once`);
    }
    seen.add(name);
    switch (type) {
      case "bool": {
        if (value === "")
          throw flagError(`missing a value on flag: --${name}`, `write --${name} or --${name}=true|false`);
        const v = (value ?? "true").toLowerCase();
        if (v !== "true" && v !== "false") {
          throw flagError(
            `expecting boolean value for flag --${name}, not: ${value}`,
            `use --${name}=true or --${name}=false`,
          );
        }
        out.bools.set(name, v === "true");
        break;
      }
      case "string":
        if (value === undefined) throw flagError(`missing a value on flag: --${name}`, `write --${name}=<value>`);
        out.strings.set(name, value);
        break;
      case "strings": {
        if (value === undefined) throw flagError(`missing a value on flag: --${name}`, `write --${name}=<value>`);
        const list = out.lists.get(name) ?? [];
        list.push(value);
        out.lists.set(name, list);
        break;
      }
    }
  }
  return out;
}

const UNIT_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  "\u00b5s": 1e3,
  "\u03bcs": 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Go `time.ParseDuration`, in nanoseconds; throws a plain Error with Go's message on bad input. */
export function parseGoDuration(s: string): number {
  const orig = s;
  let neg = false;
  if (s.startsWith("-") || s.startsWith("+")) {
    neg = s[0] === "-";
    s = s.slice(1);
  }
  if (s === "0") return 0;
  if (s === "") throw new Error(`time: invalid duration ${JSON.stringify(orig)}`);
  let total = 0;
  const re = /^([0-9]*)(?:\.([0-9]*))?([^0-9.]*)/;
  while (s !== "") {
    const m = re.exec(s);
    const int = m?.[1] ?? "";
    const frac = m?.[2];
    const unit = m?.[3] ?? "";
    if (!m || (int === "" && (frac === undefined || frac === ""))) {
      throw new Error(`time: invalid duration ${JSON.stringify(orig)}`);
    }
    if (unit === "") throw new Error(`time: missing unit in duration ${JSON.stringify(orig)}`);
    const mult = UNIT_NS[unit];
    if (mult === undefined)
      throw new Error(`time: unknown unit ${JSON.stringify(unit)} in duration ${JSON.stringify(orig)}`);
    total += Number(`${int || "0"}.${frac || "0"}`) * mult;
    s = s.slice(m[0].length);
  }
  return Math.round(neg ? -total : total);
}
