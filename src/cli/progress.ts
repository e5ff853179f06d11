import { Writable } from "node:stream";
import type { BuildEvent, Reporter } from "../build/index.js";
import { formatBytes, formatMs } from "./report/format.js";

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /** Draw a live status line (stderr is a terminal). Without it, only plain summary lines are logged. */
  tty: boolean;
  /** The terminal stream the status line is drawn on (and log lines go to). */
  err: NodeJS.WritableStream;
  /** Where RUN output goes (stdout); the status line is cleared around it. */
  out: NodeJS.WritableStream;
  /** Milliseconds clock. */
  clock: () => number;
  /** Receives a plain line when a transfer finishes (the CLI logs it at debug level). */
  line: (message: string) => void;
  /** Redraw period in ms (default 200); 0 disables the timer (tests call `render()`). */
  intervalMs?: number;
  /** Terminal width (default 100). */
  columns?: number;
}

/** Live progress for pulls, pushes and long steps. */
export interface ProgressDisplay {
  /** Feed build events. */
  readonly reporter: Reporter;
  /** Use instead of `err` for log lines: clears the status line around each write. */
  readonly err: NodeJS.WritableStream;
  /** Use instead of `out` for RUN output. */
  readonly out: NodeJS.WritableStream;
  /** The current status line ("" when idle). */
  statusLine(): string;
  /** Redraws now (TTY only). */
  render(): void;
  /** Clears the status line and stops the timer. */
  stop(): void;
}

interface Task {
  phase: string;
  label: string;
  bytes: number;
  total?: number;
  start: number;
}

/** `ETA 12s` from rate and remaining bytes, "" when unknown. */
function eta(remaining: number, rate: number): string {
  if (!(rate > 0) || remaining <= 0) return "";
  return ` ETA ${formatMs((remaining / rate) * 1000)}`;
}

/**
 * Creates the progress display. On a TTY one status line at the bottom shows the running step and
 * active transfers (bytes, rate, ETA); log lines and RUN output are written above it. Off a TTY
 * nothing is drawn: each finished transfer becomes one plain line.
 */
export function createProgress(opts: ProgressOptions): ProgressDisplay {
  const tasks = new Map<string, Task>();
  let step: { label: string; start: number } | undefined;
  let drawn = false;
  let atLineStart = true;
  const width = Math.max(20, (opts.columns ?? 100) - 1);

  const statusLine = (): string => {
    const now = opts.clock();
    const parts: string[] = [];
    if (step) parts.push(`${step.label} ${formatMs(now - step.start)}`);
    const byPhase = new Map<string, Task[]>();
    for (const t of tasks.values()) byPhase.set(t.phase, [...(byPhase.get(t.phase) ?? []), t]);
    for (const [phase, ts] of byPhase) {
      const bytes = ts.reduce((n, t) => n + t.bytes, 0);
      const known = ts.every((t) => t.total !== undefined);
      const total = known ? ts.reduce((n, t) => n + (t.total ?? 0), 0) : undefined;
      const elapsed = Math.max(1, now - Math.min(...ts.map((t) => t.start))) / 1000;
      const rate = bytes / elapsed;
      parts.push(
        `${phase} ${ts.length > 1 ? `${ts.length} blobs ` : ""}${formatBytes(bytes)}${total !== undefined ? `/${formatBytes(total)}` : ""} ${formatBytes(Math.round(rate))}/s${total !== undefined ? eta(total - bytes, rate) : ""}`,
      );
    }
    const s = parts.join(" | ");
    return s.length > width ? `${s.slice(0, width - 1)}…` : s;
  };

  const clear = (): void => {
    if (drawn) opts.err.write("\r\x1b[2K");
    drawn = false;
  };
  const render = (): void => {
    if (!opts.tty || !atLineStart) return;
    const s = statusLine();
    if (s === "" && !drawn) return;
    opts.err.write(`\r\x1b[2K${s}`);
    drawn = s !== "";
  };

  const wrap = (target: NodeJS.WritableStream): NodeJS.WritableStream =>
    new Writable({
      write(chunk: Buffer | string, _enc, cb) {
        const text = typeof chunk === "string" ? chunk : chunk.toString("utf8");
        if (opts.tty) clear();
        target.write(text);
        if (text.length > 0) atLineStart = text.endsWith("\n");
        if (opts.tty) render();
        cb();
      },
    });

  const timer =
    opts.tty && (opts.intervalMs ?? 200) > 0 ? setInterval(render, opts.intervalMs ?? 200).unref() : undefined;

  const handle = (e: BuildEvent): void => {
    switch (e.kind) {
      case "step-start":
        step = { label: (e.instruction.split("\n")[0] ?? "").slice(0, 60), start: opts.clock() };
        break;
      case "step-done":
        step = undefined;
        break;
      case "transfer": {
        const t = tasks.get(e.id) ?? { phase: e.phase, label: e.label, bytes: 0, start: opts.clock() };
        t.bytes = e.bytes;
        if (e.total !== undefined) t.total = e.total;
        if (e.done) {
          tasks.delete(e.id);
          const ms = opts.clock() - t.start;
          const rate = ms > 0 ? ` (${formatBytes(Math.round((t.bytes * 1000) / ms))}/s)` : "";
          opts.line(`${e.phase} ${e.label}: ${formatBytes(t.bytes)} in ${formatMs(ms)}${rate}`);
        } else tasks.set(e.id, t);
        break;
      }
      default:
        return;
    }
    render();
  };

  return {
    reporter: (e) => {
      try {
        handle(e);
      } catch {
        // progress must never break the build
      }
    },
    err: wrap(opts.err),
    out: wrap(opts.out),
    statusLine,
    render,
    stop() {
      if (timer) clearInterval(timer);
      if (opts.tty) clear();
    },
  };
}
