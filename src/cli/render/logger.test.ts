import { test } from "node:test";
import * as assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { createLogger } from "./logger.js";
import type { LoggerOptions } from "./logger.js";
import { formatColorLine, formatJsonLine, formatTextLine } from "./format-line.js";
import { goQuote, needsQuoting } from "./go-quote.js";
import { redactor } from "./redact.js";

const start = new Date("2024-01-02T15:04:00Z");
const at = (s: number): Date => new Date(start.getTime() + s * 1000);

function capture(o: Partial<LoggerOptions>): { lines: () => string[]; opts: LoggerOptions } {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on("data", (c: Buffer) => chunks.push(c.toString("utf8")));
  const opts: LoggerOptions = {
    format: "color",
    level: "info",
    timestamps: false,
    out,
    isTTY: false,
    noColor: false,
    start,
    ...o,
  };
  return { opts, lines: () => chunks.join("").split("\n").slice(0, -1) };
}

test("color format without a TTY: kaniko's INFO[0012] layout, padded like logrus, no ANSI", () => {
  const line = formatColorLine(
    { level: "info", message: "Taking snapshot of full filesystem...", time: at(12.9) },
    { colors: false, fullTimestamp: false, start },
  );
  assert.equal(line, `INFO[0012] Taking snapshot of full filesystem...${" ".repeat(44 - 37)} `);
  const long = "x".repeat(50);
  assert.equal(
    formatColorLine({ level: "warn", message: long, time: at(1) }, { colors: false, fullTimestamp: false, start }),
    `WARN[0001] ${long} `,
  );
});

test("color format level tags, fields and full timestamps", () => {
  const tags = (["trace", "debug", "info", "warn", "error", "fatal", "panic"] as const).map((level) =>
    formatColorLine({ level, message: "m", time: at(0) }, { colors: false, fullTimestamp: false, start }).slice(0, 4),
  );
  assert.deepEqual(tags, ["TRAC", "DEBU", "INFO", "WARN", "ERRO", "FATA", "PANI"]);
  const withFields = formatColorLine(
    { level: "info", message: "pushed", fields: { z: 1, a: "x y" }, time: at(3) },
    { colors: false, fullTimestamp: true, start },
  );
  assert.equal(withFields, `INFO[2024-01-02T15:04:03Z] pushed${" ".repeat(38)}  a="x y" z=1`);
});

test("ANSI colours only with a TTY (or forced) and without NO_COLOR", () => {
  const rec = { level: "error" as const, message: "boom", time: at(5) };
  const tty = capture({ isTTY: true });
  createLogger(tty.opts).log(rec);
  assert.equal(tty.lines()[0], `\u001b[31mERRO\u001b[0m[0005] boom${" ".repeat(40)} `);
  const noColor = capture({ isTTY: true, noColor: true });
  createLogger(noColor.opts).log(rec);
  assert.equal(noColor.lines()[0], `ERRO[0005] boom${" ".repeat(40)} `);
  const forced = capture({ forceColor: true });
  createLogger(forced.opts).log({ ...rec, level: "info" });
  assert.ok(forced.lines()[0]?.startsWith("\u001b[36mINFO\u001b[0m[0005]"));
});

test("text format is logrus logfmt (what kaniko --log-format=text prints)", () => {
  assert.equal(
    formatTextLine({ level: "warn", message: 'say "hi"\n', fields: { path: "/a/b", n: 3, ok: true }, time: at(0) }),
    'time="2024-01-02T15:04:00Z" level=warning msg="say \\"hi\\"\\n" n=3 ok=true path=/a/b',
  );
  assert.equal(formatTextLine({ level: "info", message: "", time: at(0) }), 'time="2024-01-02T15:04:00Z" level=info');
});

test("json format is logrus JSONFormatter: sorted keys, Go HTML escaping, clashing fields prefixed", () => {
  assert.equal(
    formatJsonLine({ level: "info", message: "a <b> & c", fields: { msg: "clash", digest: "sha256:x" }, time: at(0) }),
    '{"digest":"sha256:x","fields.msg":"clash","level":"info","msg":"a \\u003cb\\u003e \\u0026 c","time":"2024-01-02T15:04:00Z"}',
  );
  const parsed = JSON.parse(formatJsonLine({ level: "warn", message: "w", time: at(0) })) as Record<string, unknown>;
  assert.equal(parsed.level, "warning");
});

test("level threshold filters records and enabled() agrees", () => {
  const c = capture({ level: "warn", format: "json" });
  const log = createLogger(c.opts);
  for (const level of ["debug", "info", "warn", "error"] as const) log.log({ level, message: level, time: at(0) });
  assert.deepEqual(
    c.lines().map((l) => (JSON.parse(l) as { msg: string }).msg),
    ["warn", "error"],
  );
  assert.equal(log.enabled("info"), false);
  assert.equal(log.enabled("fatal"), true);
  assert.equal(createLogger(capture({ level: "trace" }).opts).enabled("trace"), true);
});

test("secrets are redacted in every format, including when quoting would change them", () => {
  const secret = 's3cr"et';
  for (const format of ["color", "text", "json"] as const) {
    const c = capture({ format, redact: redactor([secret, "tok3n"]) });
    createLogger(c.opts).log({
      level: "info",
      message: `using ${secret} and tok3n`,
      fields: { auth: `Basic tok3n` },
      time: at(0),
    });
    const line = c.lines()[0] ?? "";
    assert.doesNotMatch(line, /tok3n|s3cr/, format);
    assert.match(line, /\*\*\*/, format);
  }
});

test("redactor replaces every occurrence, longest first, ignores empty secrets", () => {
  const r = redactor(["ab", "abcd", ""]);
  assert.equal(r("xabcdyabz"), "x***y***z");
  assert.equal(redactor([])("unchanged"), "unchanged");
  assert.equal(redactor(["a.c"])("abc a.c"), "abc ***");
  const pem = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END KEY-----";
  assert.equal(redactor([pem])("line: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"), "line: ***");
});

test("Go quoting rules", () => {
  assert.equal(needsQuoting("sha256:abc"), true);
  assert.equal(needsQuoting("a-b_c/d@e^f+g.h"), false);
  assert.equal(needsQuoting(""), false);
  assert.equal(goQuote('a"b\\c\td\u0001é'), '"a\\"b\\\\c\\td\\x01é"');
});
