/** Log levels, least to most severe (logrus order). */
export type Level = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "panic";

/** All levels, least severe first. */
export const LEVELS: readonly Level[] = Object.freeze(["trace", "debug", "info", "warn", "error", "fatal", "panic"]);

/** True when a record at `level` passes a logger whose threshold is `threshold`. */
export function levelEnabled(level: Level, threshold: Level): boolean {
  return LEVELS.indexOf(level) >= LEVELS.indexOf(threshold);
}

/** logrus's name for a level as written in logfmt/JSON (`warn` is spelled `warning`). */
export function logrusLevelName(level: Level): string {
  return level === "warn" ? "warning" : level;
}

/** The 4-letter upper-case tag of colored/TTY lines: TRAC, DEBU, INFO, WARN, ERRO, FATA, PANI. */
export function levelTag(level: Level): string {
  return logrusLevelName(level).toUpperCase().slice(0, 4);
}

/** ANSI colour code logrus uses for a level (gray, blue, yellow, red). */
export function levelColor(level: Level): number {
  switch (level) {
    case "trace":
    case "debug":
      return 37;
    case "info":
      return 36;
    case "warn":
      return 33;
    case "error":
    case "fatal":
    case "panic":
      return 31;
  }
}
