/** kaniko-compatible command-line parsing for `executor`/`kiln build` and `warmer`/`kiln warm`. */
export type { FlagAlias, FlagSpec, FlagType, FlagValue, GitOptions } from "./types.js";
export type { ParseOptions, ParseResult } from "./parse-result.js";
export type { ExecutorOptions, IsolationMode, LogFormatName, LogLevelName } from "./executor-options.js";
export type { WarmerOptions } from "./warmer-options.js";
export type { SecretSpec } from "./secret-spec.js";
export type { HelpTopic } from "./help.js";
export type { Env } from "./resolve.js";
export { EXECUTOR_FLAGS, EXECUTOR_GROUPS, VERBOSITY_LEVELS } from "./executor-flags.js";
export { WARMER_FLAGS, WARMER_GROUPS } from "./warmer-flags.js";
export { UsageError } from "./usage-error.js";
export type { UsageErrorCode } from "./usage-error.js";
export { parseExecutorArgs } from "./executor-options.js";
export { parseWarmerArgs } from "./warmer-options.js";
export { renderHelp } from "./help.js";
export { renderFlagReferenceMarkdown } from "./markdown.js";
export { parseGoBool, parseGoDurationMs, parseGoInt } from "./go-scalars.js";
export { formatGoDuration } from "./format-default.js";
