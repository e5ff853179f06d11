import { test } from "node:test";
import * as assert from "node:assert/strict";
import { Writable } from "node:stream";
import type { BuildEvent } from "../build/index.js";
import { createLogger, redactor } from "./render/index.js";
import { createReporter } from "./reporter.js";

const TOKEN = "ghp_SUPERSECRETVALUE123";

/** A reporter writing log lines and RUN output to one string. */
function capture(secrets: { whole?: string[]; partial?: string[] } = {}) {
  let out = "";
  const sink = new Writable({
    write(c: Buffer | string, _e, cb) {
      out += typeof c === "string" ? c : c.toString("utf8");
      cb();
    },
  });
  const logger = createLogger({
    format: "text",
    level: "info",
    timestamps: false,
    out: sink,
    isTTY: false,
    noColor: true,
    start: new Date(0),
  });
  const r = createReporter(logger, redactor(secrets.whole ?? [], { partial: secrets.partial ?? [] }), sink);
  return { r, out: () => out };
}

const output = (data: Buffer, stream: "stdout" | "stderr" = "stdout", step = 1): BuildEvent => ({
  kind: "step-output",
  stage: 0,
  step,
  stream,
  data,
});
const done = (step = 1): BuildEvent => ({ kind: "step-done", stage: 0, step, ms: 1 });

test("a secret split across two pipe reads (64 KiB) is not printed", () => {
  const c = capture({ partial: [TOKEN] });
  const data = Buffer.from(`${"x".repeat(65_530)}${TOKEN}\n`);
  c.r(output(data.subarray(0, 65_536)));
  c.r(output(data.subarray(65_536)));
  c.r(done());
  assert.equal(c.out(), `${"x".repeat(65_530)}***\n`);
});

test("a whole-only secret split across reads, and what a step leaves unterminated, print at its end", () => {
  const c = capture({ whole: ["file-secret-value"] });
  c.r(output(Buffer.from("using file-sec")));
  assert.equal(c.out(), "using ", "the part that may begin the secret waits");
  c.r(output(Buffer.from("ret-value\nprompt> file-s")));
  assert.equal(c.out(), "using ***\nprompt> ");
  c.r(done());
  assert.equal(c.out(), "using ***\nprompt> file-s", "the step's end prints what was held back");
});

test("a UTF-8 character split across reads is decoded whole; streams and steps are kept apart", () => {
  const c = capture();
  const bytes = Buffer.from("é€😀\n");
  for (let i = 0; i < bytes.length; i++) c.r(output(bytes.subarray(i, i + 1)));
  c.r(output(Buffer.from("err\n"), "stderr", 2));
  c.r(done());
  assert.equal(c.out(), "é€😀\nerr\n");
  assert.doesNotMatch(c.out(), /\uFFFD/);
});

test("flush prints what a failed step held back, redacted", () => {
  const c = capture({ partial: [TOKEN] });
  c.r(output(Buffer.from(`last words ghp_SUPERSEC`)));
  assert.equal(c.out(), "last words ");
  c.r.flush();
  assert.equal(c.out(), "last words ***");
  c.r.flush();
  assert.equal(c.out(), "last words ***");
});

test("the step-start line shows a URL without its user info", () => {
  const c = capture();
  c.r({
    kind: "step-start",
    stage: 0,
    step: 1,
    total: 1,
    instruction: "ADD http://alice:S3CRETPW@127.0.0.1:8081/f.txt /f",
    location: "Dockerfile:2",
  });
  assert.match(c.out(), /ADD http:\/\/\*\*\*@127\.0\.0\.1:8081\/f\.txt \/f/);
  assert.doesNotMatch(c.out(), /alice|S3CRETPW/);
});
