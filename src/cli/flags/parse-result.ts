/** What a command parser returns: typed options plus what the CLI needs to report or log. */
export interface ParseResult<T> {
  options: T;
  /** Messages to log as warnings (deprecated spellings, ignored invalid env values). */
  warnings: string[];
  /** Canonical names of the flags given explicitly on the command line. */
  set: ReadonlySet<string>;
  /** Non-flag arguments (only non-empty when the caller allowed positionals). */
  positionals: string[];
  /** `--help`/`-h` was given: print help and exit 0; options are defaults-plus-argv, unvalidated. */
  help: boolean;
}

/** Knobs for a parse call. */
export interface ParseOptions {
  /** Accept positional arguments instead of rejecting them (default false, like kaniko). */
  allowPositionals?: boolean;
}
