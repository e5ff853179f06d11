import type { FlagSpec, FlagValue } from "./types.js";
import { applyValue, cloneValue } from "./apply-value.js";
import { suggestFlag } from "./suggest.js";
import { UsageError } from "./usage-error.js";

/** Outcome of tokenizing argv against one flag table, before env fallbacks and validation. */
export interface RawParse {
  /** Canonical flag name → value (defaults for flags not given). */
  values: Map<string, FlagValue>;
  /** Canonical names of flags given on the command line. */
  set: Set<string>;
  /** Deprecation warnings, once per spelling, in order of first use. */
  warnings: string[];
  positionals: string[];
  /** `--help` or `-h` was given. */
  help: boolean;
}

interface LongEntry {
  spec: FlagSpec;
  deprecated?: string;
}

/**
 * Parses argv with pflag semantics against `table`: `--f v`, `--f=v`, bools as `--b` or `--b=<bool>`
 * only, `-x v`, `-xv`, `-x=v`, grouped short bools (`-ab`), `--` ends flags, flags and positionals
 * may interleave. Unknown flags and missing values throw UsageError (with a "did you mean" hint).
 */
export function parseArgv(table: readonly FlagSpec[], argv: readonly string[], command: string): RawParse {
  const long = new Map<string, LongEntry>();
  const short = new Map<string, FlagSpec>();
  const values = new Map<string, FlagValue>();
  for (const spec of table) {
    long.set(spec.name, { spec });
    for (const a of spec.aliases ?? [])
      long.set(a.name, a.deprecated === undefined ? { spec } : { spec, deprecated: a.deprecated });
    if (spec.short !== undefined) short.set(spec.short, spec);
    values.set(spec.name, cloneValue(spec.default));
  }
  const out: RawParse = { values, set: new Set(), warnings: [], positionals: [], help: false };
  const visible = table.filter((s) => !s.hidden).flatMap((s) => [s.name, ...(s.aliases ?? []).map((a) => a.name)]);

  const apply = (spec: FlagSpec, shown: string, raw: string, deprecated?: string): void => {
    out.values.set(spec.name, applyValue(spec, shown, out.values.get(spec.name), raw));
    out.set.add(spec.name);
    if (deprecated !== undefined && !out.warnings.includes(deprecated)) out.warnings.push(deprecated);
  };

  let i = 0;
  const next = (): string | undefined => (i < argv.length ? argv[i++] : undefined);
  for (let arg = next(); arg !== undefined; arg = next()) {
    if (arg === "--") {
      out.positionals.push(...argv.slice(i));
      break;
    }
    if (arg.startsWith("--")) {
      const body = arg.slice(2);
      if (body.startsWith("-") || body.startsWith("=")) throw new UsageError(`bad flag syntax: ${arg}`);
      const eq = body.indexOf("=");
      const name = eq < 0 ? body : body.slice(0, eq);
      const entry = long.get(name);
      if (!entry) {
        if (name === "help") {
          out.help = true;
          continue;
        }
        const hint = suggestFlag(name, visible);
        throw new UsageError(
          `unknown flag: --${name}${hint ? ` (did you mean --${hint}?)` : ""}; see '${command} --help'`,
        );
      }
      let raw: string | undefined;
      if (eq >= 0) raw = body.slice(eq + 1);
      else if (entry.spec.type === "bool") raw = "true";
      else raw = next();
      if (raw === undefined) throw new UsageError(`flag needs an argument: --${name}`);
      apply(entry.spec, `--${name}`, raw, entry.deprecated);
      continue;
    }
    if (arg.startsWith("-") && arg.length > 1) {
      let rest = arg.slice(1);
      while (rest !== "") {
        const c = rest[0] ?? "";
        const spec = short.get(c);
        if (!spec) {
          if (c === "h") {
            out.help = true;
            rest = rest.slice(1);
            continue;
          }
          throw new UsageError(`unknown shorthand flag: '${c}' in ${arg}; see '${command} --help'`);
        }
        const shown = `-${c}, --${spec.name}`;
        if (rest[1] === "=") {
          apply(spec, shown, rest.slice(2));
          break;
        }
        if (spec.type === "bool") {
          apply(spec, shown, "true");
          rest = rest.slice(1);
          continue;
        }
        const raw = rest.length > 1 ? rest.slice(1) : next();
        if (raw === undefined) throw new UsageError(`flag needs an argument: '${c}' in -${c}`);
        apply(spec, shown, raw);
        break;
      }
      continue;
    }
    out.positionals.push(arg);
  }
  return out;
}
