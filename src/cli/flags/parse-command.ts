import type { ParseOptions, ParseResult } from "./parse-result.js";
import { parseArgv } from "./parse-argv.js";
import { applyEnvFallbacks, checkImplemented, rejectPositionals, ValueReader, type Env } from "./resolve.js";
import type { FlagSpec } from "./types.js";

/**
 * The steps every command's parser shares: pflag parsing of `argv` against `table`, env fallbacks,
 * typed reading, then (unless --help) positional, cross-flag and not-implemented checks.
 */
export function parseCommand<T>(
  command: string,
  table: readonly FlagSpec[],
  argv: readonly string[],
  env: Env,
  opts: ParseOptions,
  read: (r: ValueReader, env: Env) => T,
  validate: (options: T) => void,
): ParseResult<T> {
  const raw = parseArgv(table, argv, command);
  const fromEnv = applyEnvFallbacks(table, raw, env);
  const options = read(new ValueReader(command, table, raw.values), env);
  const result = { options, warnings: raw.warnings, set: raw.set, positionals: raw.positionals, help: raw.help };
  if (raw.help) return result;
  if (!opts.allowPositionals) rejectPositionals(raw.positionals, command);
  validate(options);
  checkImplemented(table, raw, fromEnv);
  return result;
}
