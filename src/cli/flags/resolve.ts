import type { FlagSpec, FlagValue, GitOptions } from "./types.js";
import type { RawParse } from "./parse-argv.js";
import { applyValue, cloneValue, isGit, isListMap, isStringMap } from "./apply-value.js";
import { parseGoBool } from "./go-scalars.js";
import { KilnError } from "../../common/errors.js";
import { UsageError } from "./usage-error.js";

/** Environment passed to the parsers (never read from process.env inside the library). */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Applies `spec.env` fallbacks for flags not given on the command line (flags win over env, except that
 * an `envAppends` variable adds to the flag's values and an `envOverrides` one replaces the flag's value;
 * empty variables count as unset). An invalid boolean is ignored with a warning, as kaniko ignores an
 * invalid KANIKO_NO_PUSH. Returns canonical flag name → variable that supplied its value.
 */
export function applyEnvFallbacks(table: readonly FlagSpec[], raw: RawParse, env: Env): Map<string, string> {
  const fromEnv = new Map<string, string>();
  for (const spec of table) {
    const given = raw.set.has(spec.name);
    if (spec.env === undefined || (given && spec.envAppends !== true && spec.envOverrides !== true)) continue;
    const v = env[spec.env];
    if (v === undefined || v === "") continue;
    if (spec.type === "bool" && parseGoBool(v) === undefined) {
      raw.warnings.push(`ignoring ${spec.env}=${JSON.stringify(v)}: expected true or false`);
      continue;
    }
    try {
      const base =
        given && spec.envAppends === true
          ? (raw.values.get(spec.name) ?? cloneValue(spec.default))
          : cloneValue(spec.default);
      raw.values.set(spec.name, applyValue(spec, `${spec.env} (--${spec.name})`, base, v));
    } catch (e) {
      throw new UsageError(`invalid environment variable ${spec.env}: ${(e as Error).message}`, "USAGE", { cause: e });
    }
    fromEnv.set(spec.name, spec.env);
  }
  return fromEnv;
}

/** Structural equality of two flag values (order-sensitive for lists). */
export function valueEquals(a: FlagValue, b: FlagValue): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Throws NOT_IMPLEMENTED for the first flag (in table order) that is not implemented yet but has a
 * non-default value, from argv or from its environment variable.
 */
export function checkImplemented(table: readonly FlagSpec[], raw: RawParse, fromEnv: Map<string, string>): void {
  for (const spec of table) {
    if (spec.implemented) continue;
    if (!raw.set.has(spec.name) && !fromEnv.has(spec.name)) continue;
    if (valueEquals(raw.values.get(spec.name), spec.default)) continue;
    const via = fromEnv.get(spec.name);
    const what = via === undefined ? `--${spec.name}` : `--${spec.name} (set through ${via})`;
    throw new UsageError(`kiln: ${what} is not implemented yet`, "NOT_IMPLEMENTED");
  }
}

/** Typed access to parsed values that records which flags were read, to catch unmapped flags. */
export class ValueReader {
  private readonly read = new Set<string>();
  constructor(
    private readonly command: string,
    private readonly table: readonly FlagSpec[],
    private readonly values: Map<string, FlagValue>,
  ) {}

  private get(name: string): FlagValue {
    if (!this.values.has(name)) throw new KilnError("INTERNAL", `${this.command} has no flag --${name}`);
    this.read.add(name);
    return this.values.get(name);
  }
  private bad(name: string, kind: string): KilnError {
    return new KilnError("INTERNAL", `${this.command} flag --${name} is not a ${kind}`);
  }
  string(name: string): string {
    const v = this.get(name);
    if (typeof v !== "string") throw this.bad(name, "string");
    return v;
  }
  optionalString(name: string): string | undefined {
    const v = this.get(name);
    if (v !== undefined && typeof v !== "string") throw this.bad(name, "string");
    return v;
  }
  bool(name: string): boolean {
    const v = this.get(name);
    if (typeof v !== "boolean") throw this.bad(name, "bool");
    return v;
  }
  number(name: string): number {
    const v = this.get(name);
    if (typeof v !== "number") throw this.bad(name, "number");
    return v;
  }
  list(name: string): string[] {
    const v = this.get(name);
    if (!Array.isArray(v)) throw this.bad(name, "list");
    return [...v];
  }
  map(name: string): Record<string, string> {
    const v = this.get(name);
    if (!isStringMap(v)) throw this.bad(name, "key=value map");
    return { ...v };
  }
  multiMap(name: string): Record<string, string[]> {
    const v = this.get(name);
    if (!isListMap(v)) throw this.bad(name, "key=value list map");
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, [...x]]));
  }
  git(name: string): GitOptions {
    const v = this.get(name);
    if (!isGit(v)) throw this.bad(name, "git options");
    return { ...v };
  }
  /** Throws INTERNAL if some table flag was never read (an options field is missing). */
  assertAllRead(): void {
    const missed = this.table.filter((s) => !this.read.has(s.name)).map((s) => `--${s.name}`);
    if (missed.length > 0) throw new KilnError("INTERNAL", `${this.command} options do not map ${missed.join(", ")}`);
  }
}

/**
 * Resolves `--build-arg KEY` (no `=`) from the environment: `KEY=<value>` when KEY is set, else
 * left as `KEY` (declared without a value, so the Dockerfile default applies).
 */
export function resolveBuildArgs(args: readonly string[], env: Env): string[] {
  return args.map((a) => {
    if (a.includes("=")) return a;
    const v = env[a];
    return v === undefined ? a : `${a}=${v}`;
  });
}

/** Throws the kaniko-style error for stray positional arguments (e.g. `--no-push false`). */
export function rejectPositionals(positionals: readonly string[], command: string): void {
  const first = positionals[0];
  if (first === undefined) return;
  const hint =
    parseGoBool(first) !== undefined ? ` (boolean flags take their value as --flag=${first}, not --flag ${first})` : "";
  throw new UsageError(`unexpected argument ${JSON.stringify(first)}: ${command} takes only flags${hint}`);
}
