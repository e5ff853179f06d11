import { test } from "node:test";
import * as assert from "node:assert/strict";
import { parseGoBool, parseGoDurationMs, parseGoInt } from "./go-scalars.js";
import { formatGoDuration } from "./format-default.js";

test("parseGoBool accepts exactly Go's strconv.ParseBool set", () => {
  for (const t of ["1", "t", "T", "TRUE", "true", "True"]) assert.equal(parseGoBool(t), true, t);
  for (const f of ["0", "f", "F", "FALSE", "false", "False"]) assert.equal(parseGoBool(f), false, f);
  for (const bad of ["", "yes", "no", "tRUE", "on", " true", "2"]) assert.equal(parseGoBool(bad), undefined, bad);
});

test("parseGoInt follows ParseInt base 0", () => {
  const cases: [string, number | undefined][] = [
    ["0", 0],
    ["42", 42],
    ["-1", -1],
    ["+7", 7],
    ["010", 8],
    ["0x1f", 31],
    ["0X1F", 31],
    ["0o17", 15],
    ["0b101", 5],
    ["0x_1f", 31],
    ["1_000", undefined],
    ["0b1__0", undefined],
    ["", undefined],
    ["-", undefined],
    ["12a", undefined],
    ["09", undefined],
    ["3.0", undefined],
    ["99999999999999999999", undefined],
  ];
  for (const [s, want] of cases) assert.equal(parseGoInt(s), want, s);
});

test("parseGoDurationMs follows time.ParseDuration and returns ms", () => {
  const cases: [string, number | undefined][] = [
    ["336h", 336 * 3_600_000],
    ["1h30m", 5_400_000],
    ["1.5h", 5_400_000],
    ["90s", 90_000],
    ["500ms", 500],
    ["1500us", 1],
    ["1500µs", 1],
    ["2000000ns", 2],
    [".5s", 500],
    ["1.s", 1000],
    ["-2m", -120_000],
    ["0", 0],
    ["", undefined],
    ["10", undefined],
    ["1d", undefined],
    [".s", undefined],
    ["1h 30m", undefined],
    ["3000000h", undefined],
  ];
  for (const [s, want] of cases) assert.equal(parseGoDurationMs(s), want, s);
});

test("formatGoDuration matches Go's Duration.String for common values", () => {
  assert.equal(formatGoDuration(336 * 3_600_000), "336h0m0s");
  assert.equal(formatGoDuration(90_000), "1m30s");
  assert.equal(formatGoDuration(1500), "1.5s");
  assert.equal(formatGoDuration(250), "250ms");
  assert.equal(formatGoDuration(0), "0s");
});
