import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { createProgress } from "./progress.js";

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
      line: (m) => lines.push(m),
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
    assert.deepEqual(lines, ["pull layer a: 4.0 MiB in 2.0 s (2.0 MiB/s)"]);
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
      line: (m) => lines.push(m),
    });
    p.reporter({ kind: "step-start", stage: 0, step: 1, total: 1, instruction: "RUN x", location: "D:1" });
    p.reporter({ kind: "transfer", id: "b", phase: "push", label: "layer b", bytes: 10, done: false });
    p.err.write("INFO line\n");
    p.out.write("run output\n");
    p.reporter({ kind: "transfer", id: "b", phase: "push", label: "layer b", bytes: 20, done: true });
    p.stop();
    assert.equal(err.text(), "INFO line\n");
    assert.equal(out.text(), "run output\n");
    assert.deepEqual(lines, ["push layer b: 20 B in 0 ms"]);
  });
});
