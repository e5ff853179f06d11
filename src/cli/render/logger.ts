import type { Level } from "./level.js";
import type { LogRecord } from "./format-line.js";
import { levelEnabled } from "./level.js";
import { formatColorLine, formatJsonLine, formatTextLine } from "./format-line.js";

/** Sink for log records. */
export interface Logger {
  /** Renders and writes the record if its level is enabled. */
  log(r: LogRecord): void;
  /** True when records at `level` would be written (use to skip building expensive messages). */
  enabled(level: Level): boolean;
}

/** Logger settings; mirrors kaniko's --log-format, --verbosity and --log-timestamp. */
export interface LoggerOptions {
  format: "text" | "color" | "json";
  level: Level;
  /** --log-timestamp: full RFC3339 time instead of seconds since start (color format only). */
  timestamps: boolean;
  out: NodeJS.WritableStream;
  isTTY: boolean;
  /** NO_COLOR is set. */
  noColor: boolean;
  /** Process start; color lines show whole seconds since it. */
  start: Date;
  /** Colour even without a TTY (kaniko always colours `color`; e.g. for FORCE_COLOR / CI log viewers). */
  forceColor?: boolean;
  /** Applied to the message, field values and the finished line, e.g. `redactor(secrets)`. */
  redact?: (s: string) => string;
}

function redactRecord(r: LogRecord, redact: (s: string) => string): LogRecord {
  if (!r.fields) return { ...r, message: redact(r.message) };
  const fields: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(r.fields)) fields[k] = typeof v === "string" ? redact(v) : v;
  return { ...r, message: redact(r.message), fields };
}

/**
 * Creates a logger writing one kaniko/logrus-compatible line per record to `out`:
 * "color" → `INFO[0012] msg` (ANSI only when (isTTY or forceColor) and not noColor),
 * "text" → logrus logfmt `time="…" level=info msg="…"`, "json" → `{"level":…,"msg":…,"time":…}`.
 */
export function createLogger(opts: LoggerOptions): Logger {
  const colors = (opts.isTTY || opts.forceColor === true) && !opts.noColor;
  const redact = opts.redact ?? ((s: string) => s);
  const format = (r: LogRecord): string => {
    switch (opts.format) {
      case "json":
        return formatJsonLine(r);
      case "text":
        return formatTextLine(r);
      case "color":
        return formatColorLine(r, { colors, fullTimestamp: opts.timestamps, start: opts.start });
    }
  };
  return {
    enabled: (level) => levelEnabled(level, opts.level),
    log(r) {
      if (!levelEnabled(r.level, opts.level)) return;
      opts.out.write(`${redact(format(redactRecord(r, redact)))}\n`);
    },
  };
}
