import { Writable } from "node:stream";
import type { BuildEvent, Reporter } from "../build/index.js";
import { formatBytes, formatMs } from "./report/format.js";
import type { Level } from "./render/index.js";

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /** Draw a live status line (stderr is a terminal). Without it, only plain lines are logged. */
  tty: boolean;
  /** The terminal stream the status line is drawn on (and log lines go to). */
  err: NodeJS.WritableStream;
  /** Where RUN output goes (stdout); the status line is cleared around it. */
  out: NodeJS.WritableStream;
  /** Milliseconds clock. */
  clock: () => number;
  /**
   * Receives plain lines: each finished transfer at `debug`, and off a TTY one `info` line per phase
   * every `plainIntervalMs` while transfers run (so CI logs show long pulls and pushes).
   */
  line: (message: string, level: Level) => void;
  /**
   * Redraw period in ms (default 200); 0 disables the timer (tests call `render()`). Running transfers are
   * drawn only by this timer, so the redraw rate is bounded however many transfer events arrive.
   */
  intervalMs?: number;
  /** Off a TTY: ms between plain progress lines of running transfers (default 10 000; 0: never). */
  plainIntervalMs?: number;
  /** Terminal width (default, and when 0: 100); the status line is cut to one column less. */
  columns?: number;
  /** Applied to everything drawn (step instructions may contain secret values). */
  redact?: (s: string) => string;
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
  /** Clears the status line, stops the timer and writes the lines still queued (off a TTY). */
  stop(): void;
}

/** How the CLI shows progress: a live line on an interactive terminal, plain lines everywhere else. */
export function progressIsLive(o: {
  isTTY: boolean;
  logFormat: string;
  env: Record<string, string | undefined>;
}): boolean {
  const ci = o.env.CI !== undefined && o.env.CI !== "" && o.env.CI !== "false";
  return o.isTTY && o.logFormat !== "json" && !ci && o.env.TERM !== "dumb";
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

/** Control characters (escape sequences, CR, tabs) would corrupt the terminal line. */
function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, " ");
}

/** Cuts `s` to `width` code points, ending in "…" when cut. */
function fit(s: string, width: number): string {
  const cps = [...s];
  return cps.length > width ? `${cps.slice(0, width - 1).join("")}…` : s;
}

/** One phase's aggregate: `pull 2 blobs 1.0 MiB/4.0 MiB 512 KiB/s ETA 6.0 s`. */
function phaseSummary(phase: string, ts: Task[], now: number): string {
  const bytes = ts.reduce((n, t) => n + t.bytes, 0);
  const known = ts.every((t) => t.total !== undefined);
  const total = known ? ts.reduce((n, t) => n + (t.total ?? 0), 0) : undefined;
  const elapsed = Math.max(1, now - Math.min(...ts.map((t) => t.start))) / 1000;
  const rate = bytes / elapsed;
  const blobs = ts.length > 1 ? `${ts.length} blobs ` : "";
  const of = total !== undefined ? `/${formatBytes(total)}` : "";
  return `${phase} ${blobs}${formatBytes(bytes)}${of} ${formatBytes(Math.round(rate))}/s${total !== undefined ? eta(total - bytes, rate) : ""}`;
}

/**
 * Creates the progress display. On a TTY one status line at the bottom shows the running step with
 * its elapsed time and the active transfers per phase (bytes, rate, ETA); log lines and RUN output are
 * written above it. Off a TTY nothing is drawn: finished transfers become debug lines and long
 * transfers an info line per phase every `plainIntervalMs`.
 *
 * Rates: transfer updates only record bytes and never redraw; the `intervalMs` timer draws them. The
 * events themselves already arrive at a bounded rate — the registry client emits at most one
 * `blob-progress` per blob per 100 ms (src/registry/blob-progress.ts), the one throttle, kept in the
 * library because events are its public output and every consumer (this display, the build report,
 * library users) should get a bounded stream, not one event per network chunk. A redraw here costs
 * one terminal write, so a second throttle would only add state. Step start/finish and finished
 * transfers redraw at once.
 */
export function createProgress(opts: ProgressOptions): ProgressDisplay {
  const tasks = new Map<string, Task>();
  const redact = opts.redact ?? ((s: string) => s);
  const plainInterval = opts.plainIntervalMs ?? 10_000;
  /** Running steps by `stage/step` (stages build concurrently); the oldest one is shown. */
  const steps = new Map<string, { label: string; start: number }>();
  let drawn = false;
  let atLineStart = true;
  const lastPlain = new Map<string, number>();
  // A pseudo-terminal without a size reports 0 columns: treat it as unknown.
  const width = Math.max(20, (opts.columns !== undefined && opts.columns > 0 ? opts.columns : 100) - 1);

  const byPhase = (): Map<string, Task[]> => {
    const m = new Map<string, Task[]>();
    for (const t of tasks.values()) m.set(t.phase, [...(m.get(t.phase) ?? []), t]);
    return m;
  };

  const statusLine = (): string => {
    const now = opts.clock();
    const parts: string[] = [];
    const [step] = steps.values();
    if (step) parts.push(`${step.label} ${formatMs(now - step.start)}${steps.size > 1 ? ` (+${steps.size - 1})` : ""}`);
    for (const [phase, ts] of byPhase()) parts.push(phaseSummary(phase, ts, now));
    return fit(printable(redact(parts.join(" | "))), width);
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

  // Off a TTY, the writes of one event-loop turn are joined into one write per stream, in their order
  // across both streams (a debug build logs hundreds of lines, and each write to a pipe costs a
  // syscall and often a context switch); they go out on the next turn, and `stop()` writes what is left.
  const pending: { target: NodeJS.WritableStream; text: string }[] = [];
  let flushTimer: NodeJS.Immediate | undefined;
  const flush = (): void => {
    if (flushTimer !== undefined) clearImmediate(flushTimer);
    flushTimer = undefined;
    const runs = pending.splice(0);
    for (let i = 0; i < runs.length;) {
      const target = runs[i]?.target as NodeJS.WritableStream;
      let text = "";
      for (; i < runs.length && runs[i]?.target === target; i++) text += runs[i]?.text ?? "";
      target.write(text);
    }
  };

  const wrap = (target: NodeJS.WritableStream): NodeJS.WritableStream =>
    new Writable({
      write(chunk: Buffer | string, _enc, cb) {
        const text = typeof chunk === "string" ? chunk : chunk.toString("utf8");
        if (!opts.tty) {
          pending.push({ target, text });
          flushTimer ??= setImmediate(flush);
          cb();
          return;
        }
        clear();
        target.write(text);
        if (text.length > 0) atLineStart = text.endsWith("\n");
        render();
        cb();
      },
    });

  const timer =
    opts.tty && (opts.intervalMs ?? 200) > 0 ? setInterval(render, opts.intervalMs ?? 200).unref() : undefined;

  /** Off a TTY: an info line per phase with running transfers, at most every `plainInterval`. */
  const plainLines = (): void => {
    if (opts.tty || plainInterval <= 0) return;
    const now = opts.clock();
    for (const [phase, ts] of byPhase()) {
      const first = Math.min(...ts.map((t) => t.start));
      const last = lastPlain.get(phase) ?? first;
      if (now - last < plainInterval) continue;
      lastPlain.set(phase, now);
      opts.line(redact(phaseSummary(phase, ts, now)), "info");
    }
  };

  /** Returns whether the event should redraw at once (false: a transfer update, drawn by the timer). */
  const handle = (e: BuildEvent): boolean => {
    switch (e.kind) {
      case "step-start":
        steps.set(`${e.stage}/${e.step}`, {
          label: (e.instruction.split("\n")[0] ?? "").slice(0, 60),
          start: opts.clock(),
        });
        return true;
      case "step-done":
        steps.delete(`${e.stage}/${e.step}`);
        return true;
      case "transfer": {
        const t = tasks.get(e.id) ?? { phase: e.phase, label: e.label, bytes: 0, start: opts.clock() };
        t.bytes = e.bytes;
        if (e.total !== undefined) t.total = e.total;
        if (!e.done) {
          tasks.set(e.id, t);
          plainLines();
          return false;
        }
        tasks.delete(e.id);
        if (![...tasks.values()].some((x) => x.phase === e.phase)) lastPlain.delete(e.phase);
        const ms = opts.clock() - t.start;
        const what = `${e.phase} ${e.label}`;
        if (e.failed === true) opts.line(redact(`${what}: failed after ${formatBytes(t.bytes)}`), "debug");
        else {
          const rate = ms > 0 ? ` (${formatBytes(Math.round((t.bytes * 1000) / ms))}/s)` : "";
          opts.line(redact(`${what}: ${formatBytes(t.bytes)} in ${formatMs(ms)}${rate}`), "debug");
        }
        return true;
      }
      default:
        return false;
    }
  };

  return {
    reporter: (e) => {
      try {
        if (handle(e)) render();
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
      flush();
    },
  };
}
