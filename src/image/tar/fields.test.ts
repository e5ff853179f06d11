import * as assert from "node:assert/strict";
import { test } from "node:test";
import { hasCode } from "../../common/errors.js";
import { readNumber } from "./fields.js";

/**
 * The rule readNumber's byte loop implements, written the plain way: the field as latin1 text, cut at the
 * first NUL, trimmed; empty is 0; otherwise octal digits only.
 */
function reference(field: Buffer): number | "invalid" {
  const text = field.toString("latin1").replace(/\0.*$/s, "").trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) return "invalid";
  return parseInt(text, 8);
}

function outcome(field: Buffer): number | "invalid" {
  try {
    return readNumber(field, [0, field.length], "size", "some/entry");
  } catch (e) {
    assert.ok(hasCode(e, "TAR_INVALID"), String(e));
    assert.match((e as Error).message, /size of "some\/entry"/);
    return "invalid";
  }
}

test("octal fields: the fast byte loop agrees with the plain text rule", () => {
  const fixed = [
    "0000644\0",
    "   644 \0",
    "644\0garbage",
    "\0\0\0\0\0\0\0\0",
    "        ",
    "0000000000 ",
    "12 34\0  ",
    "0009\0   ",
    "\t755\n\0  ",
    " 755\xa0\0  ",
    "-1\0     ",
    " \0 7    ",
    "7\x85     ",
  ].map((s) => Buffer.from(s, "latin1"));
  // Random fields over the bytes that matter: digits, spaces of every kind, NUL, and a few others.
  const alphabet = Buffer.from("01234567 \t\n\v\f\r\xa0\x0089x-+\x85", "latin1");
  let seed = 7;
  const next = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  for (let n = 0; n < 20000; n++) {
    const len = 1 + (next() % 12);
    fixed.push(Buffer.from(Array.from({ length: len }, () => alphabet[next() % alphabet.length] as number)));
  }
  let valid = 0;
  // A first byte with the high bit set marks a base-256 field (below).
  for (const f of fixed.filter((b) => ((b[0] as number) & 0x80) === 0)) {
    const want = reference(f);
    assert.equal(outcome(f), want, JSON.stringify(f.toString("latin1")));
    if (want !== "invalid") valid++;
  }
  assert.ok(valid > 1000 && valid < fixed.length - 1000, `both outcomes are exercised (${valid} valid)`);
});

test("base-256 fields and their range", () => {
  const big = Buffer.alloc(12);
  big[0] = 0x80;
  big.writeUInt32BE(0x12345678, 8);
  assert.equal(readNumber(big, [0, 12], "size"), 0x12345678);
  const minusOne = Buffer.alloc(8, 0xff);
  assert.equal(readNumber(minusOne, [0, 8], "mtime"), -1);
  const minus300 = Buffer.alloc(12, 0xff);
  minus300.writeInt16BE(-300, 10);
  assert.equal(readNumber(minus300, [0, 12], "mtime"), -300);
  const huge = Buffer.alloc(12, 0x7f);
  huge[0] = 0xff & 0xbf;
  assert.throws(() => readNumber(huge, [0, 12], "size", "x"), /size of "x" is out of range/);
});
