/** kaniko/logrus-compatible log rendering for the CLI. */
export type { Level } from "./level.js";
export type { LogRecord } from "./format-line.js";
export type { Logger, LoggerOptions } from "./logger.js";
export { LEVELS, levelEnabled } from "./level.js";
export { formatColorLine, formatJsonLine, formatTextLine } from "./format-line.js";
export { createLogger } from "./logger.js";
export { envSecrets, redactor } from "./redact.js";
