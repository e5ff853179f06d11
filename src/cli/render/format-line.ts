import type { Level } from "./level.js";
import { levelColor, levelTag, logrusLevelName } from "./level.js";
import { logfmtValue } from "./go-quote.js";

/** One log line to render. */
export interface LogRecord {
  level: Level;
  message: string;
  fields?: Record<string, string | number | boolean>;
  time: Date;
}

/** Go RFC3339 in UTC, seconds precision (what logrus prints in a container with no TZ): 2024-01-02T15:04:05Z. */
export function rfc3339(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

/** Go's `%04d`: zero-padded to width 4 including the sign. */
function pad4(n: number): string {
  const neg = n < 0;
  const digits = String(Math.abs(n)).padStart(neg ? 3 : 4, "0");
  return neg ? `-${digits}` : digits;
}

/** Go's `%-44s`: left-aligned, padded with spaces to 44 code points. */
function padRight44(s: string): string {
  const len = [...s].length;
  return len >= 44 ? s : s + " ".repeat(44 - len);
}

const sortedKeys = (fields: Record<string, unknown> | undefined): string[] => Object.keys(fields ?? {}).sort();

/**
 * logrus TextFormatter's TTY/colored layout, which kaniko's default `--log-format=color` forces:
 * `INFO[0012] message<pad to 44> key=value`, seconds since `start`, or the RFC3339 time when
 * `fullTimestamp`. ANSI colours on the level tag and field keys only when `colors`.
 */
export function formatColorLine(r: LogRecord, o: { colors: boolean; fullTimestamp: boolean; start: Date }): string {
  const c = levelColor(r.level);
  const paint = (s: string): string => (o.colors ? `\u001b[${c}m${s}\u001b[0m` : s);
  const when = o.fullTimestamp ? rfc3339(r.time) : pad4(Math.trunc((r.time.getTime() - o.start.getTime()) / 1000));
  const msg = r.message.endsWith("\n") ? r.message.slice(0, -1) : r.message;
  let line = `${paint(levelTag(r.level))}[${when}] ${padRight44(msg)} `;
  for (const k of sortedKeys(r.fields)) line += ` ${paint(k)}=${logfmtValue(r.fields?.[k] ?? "")}`;
  return line;
}

/**
 * logrus TextFormatter's non-TTY layout, which kaniko's `--log-format=text` produces:
 * `time="2024-01-02T15:04:05Z" level=info msg="…" key=value` (fields sorted; `warn` is `warning`).
 */
export function formatTextLine(r: LogRecord): string {
  const parts = [`time=${logfmtValue(rfc3339(r.time))}`, `level=${logrusLevelName(r.level)}`];
  if (r.message !== "") parts.push(`msg=${logfmtValue(r.message)}`);
  for (const k of sortedKeys(r.fields)) parts.push(`${k}=${logfmtValue(r.fields?.[k] ?? "")}`);
  return parts.join(" ");
}

/** Go encoding/json's default HTML-safe escaping on top of JSON.stringify. */
function goJson(v: unknown): string {
  return JSON.stringify(v)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/**
 * logrus JSONFormatter's layout, which kaniko's `--log-format=json` produces: one object, keys
 * sorted, `{"level":"info","msg":"…","time":"…"}`; fields named level/msg/time become `fields.<name>`.
 */
export function formatJsonLine(r: LogRecord): string {
  const data: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(r.fields ?? {})) {
    data[k === "level" || k === "msg" || k === "time" ? `fields.${k}` : k] = v;
  }
  data.level = logrusLevelName(r.level);
  data.msg = r.message;
  data.time = rfc3339(r.time);
  const ordered = Object.fromEntries(
    Object.keys(data)
      .sort()
      .map((k) => [k, data[k]]),
  );
  return goJson(ordered);
}
