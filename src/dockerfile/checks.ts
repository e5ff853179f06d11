import type { Warning } from "./errors.js";

/** kiln warning code → BuildKit lint rule name (what `# check=skip=` lists). */
export const WARNING_RULES: Readonly<Record<string, string>> = Object.freeze({
  CONSISTENT_INSTRUCTION_CASING: "ConsistentInstructionCasing",
  EMPTY_CONTINUATION: "NoEmptyContinuation",
  EXPOSE_INVALID_FORMAT: "ExposeInvalidFormat",
  EXPOSE_PROTO_CASING: "ExposeProtoCasing",
  LEGACY_KEY_VALUE_FORMAT: "LegacyKeyValueFormat",
  MULTIPLE_INSTRUCTIONS_DISALLOWED: "MultipleInstructionsDisallowed",
  FROM_AS_CASING: "FromAsCasing",
  JSON_ARGS_RECOMMENDED: "JSONArgsRecommended",
  MAINTAINER_DEPRECATED: "MaintainerDeprecated",
  RESERVED_STAGE_NAME: "ReservedStageName",
  STAGE_NAME_CASING: "StageNameCasing",
  UNDEFINED_VAR: "UndefinedVar",
});

/** The parsed `# check=` parser directive. */
export interface CheckConfig {
  /** Rule names to skip, or "all". */
  skip: string[] | "all";
  /** `error=true`: the build should fail when warnings remain. */
  error: boolean;
}

/** Parses a `# check=skip=A,B;error=true` directive value (unknown keys are ignored). */
export function parseCheckDirective(value: string | undefined): CheckConfig {
  const cfg: CheckConfig = { skip: [], error: false };
  if (value === undefined) return cfg;
  for (const part of value.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim().toLowerCase();
    const v = part.slice(eq + 1).trim();
    if (key === "skip") {
      cfg.skip =
        v.toLowerCase() === "all"
          ? "all"
          : v
              .split(",")
              .map((s) => s.trim())
              .filter((s) => s !== "");
    } else if (key === "error") {
      cfg.error = v.toLowerCase() === "true";
    }
  }
  return cfg;
}

/** The warnings not skipped by `cfg` (matching on BuildKit rule names, case-insensitively). */
export function applyChecks(warnings: readonly Warning[], cfg: CheckConfig): Warning[] {
  if (cfg.skip === "all") return [];
  const skip = new Set(cfg.skip.map((s) => s.toLowerCase()));
  return warnings.filter((w) => !skip.has((WARNING_RULES[w.code] ?? w.code).toLowerCase()));
}
