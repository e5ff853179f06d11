import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import type { BuildEvent } from "../build/index.js";
import type { Digest } from "../image/digest.js";
import { createProgress, progressIsLive, type ProgressOptions } from "./progress.js";
import { transferEvent } from "./transfer-events.js";

function sink(): { stream: Writable; text: () => string } {
  let s = "";
  return {
    stream: new Writable({
      write(c: Buffer, _e, cb) {
        s += c.toString();
        cb();
      },
    }),
    text: () => s,
  };
}

describe("progress display", () => {
  test("on a TTY: a status line with bytes, rate and ETA, cleared around log lines and RUN output", () => {
    let now = 0;
    const err = sink();
    const out = sink();
    const lines: string[] = [];
    const p = createProgress({
      tty: true,
      err: err.stream,
      out: out.stream,
      clock: () => now,
      line: (m, level) => lines.push(`${level}: ${m}`),
      intervalMs: 0,
    });
    p.reporter({ kind: "step-start", stage: 0, step: 1, total: 1, instruction: "RUN make", location: "D:1" });
    p.reporter({ kind: "transfer", id: "a", phase: "pull", label: "layer a", bytes: 0, total: 4 << 20, done: false });
    now = 1000;
    p.reporter({
      kind: "transfer",
      id: "a",
      phase: "pull",
      label: "layer a",
      bytes: 1 << 20,
      total: 4 << 20,
      done: false,
    });
    assert.equal(p.statusLine(), "RUN make 1.0 s | pull 1.0 MiB/4.0 MiB 1.0 MiB/s ETA 3.0 s");
    p.err.write("INFO[0001] hello\n");
    assert.ok(err.text().endsWith(`\r\x1b[2KINFO[0001] hello\n\r\x1b[2K${p.statusLine()}`), JSON.stringify(err.text()));
    // RUN output without a final newline: the status line waits until the line is complete.
    p.out.write("partial");
    const before = err.text();
    p.render();
    assert.equal(err.text(), before);
    p.out.write(" line\n");
    p.render();
    assert.ok(err.text().endsWith(p.statusLine()));
    now = 2000;
    p.reporter({
      kind: "transfer",
      id: "a",
      phase: "pull",
      label: "layer a",
      bytes: 4 << 20,
      total: 4 << 20,
      done: true,
    });
    assert.deepEqual(lines, ["debug: pull layer a: 4.0 MiB in 2.0 s (2.0 MiB/s)"]);
    p.reporter({ kind: "step-done", stage: 0, step: 1, ms: 2000 });
    assert.equal(p.statusLine(), "");
    p.stop();
    assert.ok(err.text().endsWith("\r\x1b[2K"));
  });

  test("off a TTY nothing is drawn: finished transfers become plain lines", () => {
    const err = sink();
    const out = sink();
    const lines: string[] = [];
    const p = createProgress({
      tty: false,
      err: err.stream,
      out: out.stream,
      clock: () => 0,
      line: (m, level) => lines.push(`${level}: ${m}`),
    });
    p.reporter({ kind: "step-start", stage: 0, step: 1, total: 1, instruction: "RUN x", location: "D:1" });
    p.reporter({ kind: "transfer", id: "b", phase: "push", label: "layer b", bytes: 10, done: false });
    p.err.write("INFO line\n");
    p.out.write("run output\n");
    p.reporter({ kind: "transfer", id: "b", phase: "push", label: "layer b", bytes: 20, done: true });
    p.stop();
    assert.equal(err.text(), "INFO line\n");
    assert.equal(out.text(), "run output\n");
    assert.deepEqual(lines, ["debug: push layer b: 20 B in 0 ms"]);
  });

  test("transfer updates never redraw by themselves; the timer draws them; step and finish events redraw at once", () => {
    let now = 0;
    const err = sink();
    const p = createProgress({ ...base(err, () => now), tty: true });
    const redraws = (): number => err.text().split("\r\x1b[2K").length - 1;
    p.reporter({ kind: "step-start", stage: 0, step: 1, total: 1, instruction: "RUN x", location: "D:1" });
    assert.equal(redraws(), 1, "a step start redraws at once");
    // However many updates arrive (here 10 000 within 10 s), they cost no terminal writes.
    for (let i = 0; i < 10_000; i++) {
      now = i;
      p.reporter(transfer("a", i * 100, false));
    }
    assert.equal(redraws(), 1, "no redraw per transfer update");
    p.render(); // the timer's tick
    assert.equal(redraws(), 2);
    assert.match(p.statusLine(), /^RUN x 10\.0 s \| pull 976 KiB\/3\.8 MiB /);
    p.reporter(transfer("a", 4_000_000, true));
    assert.equal(redraws(), 3, "a finished transfer redraws at once");
    p.reporter({ kind: "step-done", stage: 0, step: 1, ms: 10 });
    assert.equal(redraws(), 4, "a finished step redraws at once");
    p.stop();
  });

  test("the status line fits the terminal width and never carries control characters or secrets", () => {
    const err = sink();
    const p = createProgress({
      ...base(err, () => 5000),
      tty: true,
      columns: 40,
      redact: (s) => s.replaceAll("hunter2", "***"),
    });
    p.reporter({
      kind: "step-start",
      stage: 0,
      step: 1,
      total: 1,
      instruction: "RUN echo hunter2 \x1b[31mred\r ünïcødé and a very long tail that does not fit",
      location: "D:1",
    });
    const line = p.statusLine();
    assert.equal([...line].length, 39);
    assert.ok(line.endsWith("…"));
    assert.ok(!line.includes("hunter2"));
    assert.ok(line.startsWith("RUN echo *** "));
    assert.ok(![...line].some((c) => c.charCodeAt(0) < 0x20), "no control characters");
    p.stop();
  });

  test("concurrent stages: the oldest running step is shown with the number of others", () => {
    let now = 0;
    const p = createProgress({ ...base(sink(), () => now), tty: true });
    p.reporter({ kind: "step-start", stage: 0, step: 1, total: 2, instruction: "RUN a", location: "D:2" });
    now = 1500;
    p.reporter({ kind: "step-start", stage: 1, step: 1, total: 2, instruction: "RUN b", location: "D:5" });
    assert.equal(p.statusLine(), "RUN a 1.5 s (+1)");
    p.reporter({ kind: "step-done", stage: 0, step: 1, ms: 1500 });
    assert.equal(p.statusLine(), "RUN b 0 ms");
    p.stop();
  });

  test("off a TTY long transfers log one info line per phase per interval", () => {
    let now = 0;
    const err = sink();
    const lines: string[] = [];
    const p = createProgress({
      ...base(err, () => now),
      line: (m, level) => lines.push(`${level}: ${m}`),
      plainIntervalMs: 10_000,
    });
    p.reporter(transfer("a", 0, false));
    p.reporter(transfer("b", 0, false));
    for (let t = 100; t <= 25_000; t += 100) {
      now = t;
      p.reporter(transfer("a", t * 100, false));
      p.reporter(transfer("b", t * 100, false));
    }
    now = 26_000;
    p.reporter(transfer("a", 4_000_000, true));
    p.reporter(transfer("b", 4_000_000, true));
    p.stop();
    assert.equal(err.text(), "");
    assert.deepEqual(lines, [
      "info: pull 2 blobs 1.9 MiB/7.6 MiB 194 KiB/s ETA 30.2 s",
      "info: pull 2 blobs 3.8 MiB/7.6 MiB 195 KiB/s ETA 20.1 s",
      "debug: pull layer a: 3.8 MiB in 26.0 s (150 KiB/s)",
      "debug: pull layer b: 3.8 MiB in 26.0 s (150 KiB/s)",
    ]);
  });

  test("a failed transfer says so", () => {
    const lines: string[] = [];
    const p = createProgress({ ...base(sink(), () => 0), line: (m) => lines.push(m) });
    p.reporter(transfer("a", 10, false));
    p.reporter({ kind: "transfer", id: "a", phase: "pull", label: "layer a", bytes: 20, done: true, failed: true });
    assert.deepEqual(lines, ["pull layer a: failed after 20 B"]);
  });

  test("live progress only on an interactive terminal outside CI, never with json logs", () => {
    const live = (isTTY: boolean, logFormat: string, env: Record<string, string> = {}): boolean =>
      progressIsLive({ isTTY, logFormat, env });
    assert.equal(live(true, "color"), true);
    assert.equal(live(true, "text"), true);
    assert.equal(live(false, "color"), false);
    assert.equal(live(true, "json"), false);
    assert.equal(live(true, "color", { CI: "true" }), false);
    assert.equal(live(true, "color", { CI: "false" }), true);
    assert.equal(live(true, "color", { TERM: "dumb" }), false);
  });

  test("registry blob-progress events become transfer events", () => {
    const digest = `sha256:${"ab".repeat(32)}` as Digest;
    const e = transferEvent({
      kind: "blob-progress",
      direction: "push",
      registry: "reg:5000",
      repository: "app",
      digest,
      bytes: 5,
      total: 10,
      done: false,
    });
    assert.deepEqual(e, {
      kind: "transfer",
      id: `push reg:5000/app@${digest}`,
      phase: "push",
      label: "sha256:abababababab to reg:5000/app",
      bytes: 5,
      total: 10,
      done: false,
    });
    assert.equal(
      transferEvent({ kind: "retry", registry: "r", operation: "o", attempt: 1, delayMs: 1, reason: "x" }),
      undefined,
    );
  });
});

function base(err: { stream: Writable }, clock: () => number): ProgressOptions {
  return { tty: false, err: err.stream, out: sink().stream, clock, line: () => undefined, intervalMs: 0 };
}

function transfer(id: string, bytes: number, done: boolean): BuildEvent {
  return { kind: "transfer", id, phase: "pull", label: `layer ${id}`, bytes, total: 4_000_000, done };
}
