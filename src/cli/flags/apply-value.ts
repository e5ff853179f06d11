import type { FlagSpec, FlagValue, GitOptions } from "./types.js";
import { parseGoBool, parseGoDurationMs, parseGoInt } from "./go-scalars.js";
import { UsageError } from "./usage-error.js";

/** Default `--git` value (kaniko: `branch=,single-branch=false,recurse-submodules=false`). */
export function defaultGitOptions(): GitOptions {
  return { branch: "", singleBranch: false, recurseSubmodules: false, insecureSkipTLS: false };
}

/** Returns a deep copy of a flag default so accumulating flags never mutate the table. */
export function cloneValue(v: FlagValue): FlagValue {
  if (Array.isArray(v)) return [...v];
  if (v !== null && typeof v === "object") {
    if ("singleBranch" in v) return { ...v };
    const out: Record<string, string | string[]> = {};
    for (const [k, x] of Object.entries(v)) out[k] = Array.isArray(x) ? [...x] : x;
    return out as FlagValue;
  }
  return v;
}

function invalid(shown: string, raw: string, why: string): UsageError {
  return new UsageError(`invalid argument ${JSON.stringify(raw)} for "${shown}" flag: ${why}`);
}

function splitPair(raw: string): [string, string] | undefined {
  const i = raw.indexOf("=");
  if (i < 0) return undefined;
  return [raw.slice(0, i), raw.slice(i + 1)];
}

function gitBool(shown: string, raw: string, key: string, v: string): boolean {
  const b = parseGoBool(v);
  if (b === undefined) throw invalid(shown, raw, `${key} must be true or false, got ${JSON.stringify(v)}`);
  return b;
}

function applyGit(shown: string, current: GitOptions, raw: string): GitOptions {
  const pair = splitPair(raw);
  const next = { ...current };
  const keys = "branch, single-branch, recurse-submodules, insecure-skip-tls";
  if (!pair) throw invalid(shown, raw, `expected one key=value per use (keys: ${keys})`);
  const [key, v] = pair;
  switch (key) {
    case "branch":
      next.branch = v;
      break;
    case "single-branch":
      next.singleBranch = gitBool(shown, raw, key, v);
      break;
    case "recurse-submodules":
      next.recurseSubmodules = gitBool(shown, raw, key, v);
      break;
    case "insecure-skip-tls":
      next.insecureSkipTLS = gitBool(shown, raw, key, v);
      break;
    default:
      throw invalid(shown, raw, `unknown key ${JSON.stringify(key)} (valid keys: ${keys}; repeat --git for each)`);
  }
  return next;
}

/** Resolves an enum value to its canonical spelling, or undefined if it is not accepted. */
export function matchEnum(spec: FlagSpec, raw: string): string | undefined {
  const values = spec.enumValues ?? [];
  const probe = spec.enumIgnoreCase ? raw.toLowerCase() : raw;
  const direct = values.find((v) => (spec.enumIgnoreCase ? v.toLowerCase() : v) === probe);
  if (direct !== undefined) return direct;
  const aliases = spec.enumAliases ?? {};
  for (const [alias, target] of Object.entries(aliases)) {
    if ((spec.enumIgnoreCase ? alias.toLowerCase() : alias) === probe) return target;
  }
  return undefined;
}

/**
 * Applies one occurrence of a flag to its current value, pflag/kaniko style: scalars replace,
 * "multi" appends the raw value, "kv" adds one pair, "kmv" splits on `;` and appends per key,
 * "git" sets one key. `shown` is the spelling the user typed, used in error messages.
 */
export function applyValue(spec: FlagSpec, shown: string, current: FlagValue, raw: string): FlagValue {
  switch (spec.type) {
    case "string":
      return raw;
    case "bool": {
      const b = parseGoBool(raw);
      if (b === undefined) throw invalid(shown, raw, "expected true or false (or 1/0/t/f)");
      return b;
    }
    case "int": {
      const n = parseGoInt(raw);
      if (n === undefined) throw invalid(shown, raw, "expected an integer");
      return n;
    }
    case "duration": {
      const ms = parseGoDurationMs(raw);
      if (ms === undefined) throw invalid(shown, raw, 'expected a duration such as "336h", "1h30m" or "90s"');
      return ms;
    }
    case "enum": {
      const v = matchEnum(spec, raw);
      if (v === undefined) throw invalid(shown, raw, `must be one of ${(spec.enumValues ?? []).join(", ")}`);
      return v;
    }
    case "multi":
      return [...(Array.isArray(current) ? current : []), raw];
    case "kv": {
      const pair = splitPair(raw);
      if (!pair) throw invalid(shown, raw, "expected key=value");
      const base = isStringMap(current) ? current : {};
      return { ...base, [pair[0]]: pair[1] };
    }
    case "kmv": {
      const base: Record<string, string[]> = isListMap(current) ? { ...current } : {};
      for (const part of raw.split(";")) {
        if (part === "") continue;
        const pair = splitPair(part);
        if (!pair || pair[0] === "" || pair[1] === "") {
          throw invalid(shown, raw, `expected key=value[;key=value…], got ${JSON.stringify(part)}`);
        }
        base[pair[0]] = [...(base[pair[0]] ?? []), pair[1]];
      }
      return base;
    }
    case "git":
      return applyGit(shown, isGit(current) ? current : defaultGitOptions(), raw);
  }
}

/** True for a "kv" map value. */
export function isStringMap(v: FlagValue): v is Record<string, string> {
  return (
    typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === "string")
  );
}

/** True for a "kmv" map value. */
export function isListMap(v: FlagValue): v is Record<string, string[]> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every((x) => Array.isArray(x));
}

/** True for a `--git` value. */
export function isGit(v: FlagValue): v is GitOptions {
  return typeof v === "object" && v !== null && !Array.isArray(v) && "singleBranch" in v;
}
