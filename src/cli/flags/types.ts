/** Parsed value of `--git` (kaniko's gitoptions): one `key=value` per flag use. */
export interface GitOptions {
  branch: string;
  singleBranch: boolean;
  recurseSubmodules: boolean;
  insecureSkipTLS: boolean;
}

/** Any value a flag can hold after parsing (kmv maps hold arrays of values per key). */
export type FlagValue =
  string | boolean | number | string[] | Record<string, string> | Record<string, string[]> | GitOptions | undefined;

/** Value kinds a flag can take; they decide both syntax (bool vs valued) and conversion. */
export type FlagType = "string" | "bool" | "int" | "duration" | "multi" | "kv" | "kmv" | "enum" | "git";

/** Another spelling of a flag; `deprecated` is the warning text returned when it is used (none: silent). */
export interface FlagAlias {
  name: string;
  deprecated?: string;
}

/**
 * One row of a command's flag table: the single source of truth for parsing, help text and the
 * README reference. `default` is the value before argv and env are applied (durations in ms).
 */
export interface FlagSpec {
  name: string;
  short?: string;
  aliases?: FlagAlias[];
  type: FlagType;
  enumValues?: string[];
  /** Extra accepted spellings of enum values mapped to a canonical one (e.g. `warning` → `warn`). */
  enumAliases?: Readonly<Record<string, string>>;
  /** Enum values are matched case-insensitively (logrus.ParseLevel does this for --verbosity). */
  enumIgnoreCase?: boolean;
  default: FlagValue;
  /** Placeholder shown in help for the value (`path`, `host=path`, …). */
  valueName?: string;
  group: string;
  description: string;
  hidden?: boolean;
  env?: string;
  /**
   * The variable's value is added after the flag's values even when the flag is given (kaniko's
   * `KANIKO_REGISTRY_MIRROR` / `KANIKO_REGISTRY_MAP`, appended in its validateFlags); otherwise flags win.
   */
  envAppends?: boolean;
  /**
   * The variable wins over the flag when both are set (kaniko's `KANIKO_DIR`, which sets its internal paths
   * whatever `--kaniko-dir` says); otherwise flags win.
   */
  envOverrides?: boolean;
  implemented: boolean;
}
