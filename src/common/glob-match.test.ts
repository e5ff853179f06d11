import * as assert from "node:assert/strict";
import { test } from "node:test";
import { evalInChild } from "./in-child.test-helper.js";
import { BadPatternError, globMatch, validateGlob } from "./glob-match.js";

test("globMatch is Go filepath.Match", () => {
  const cases: [string, string, boolean][] = [
    ["abc", "abc", true],
    ["*", "abc", true],
    ["*c", "abc", true],
    ["a*", "a", true],
    ["a*b*c*d*e*", "axbxcxdxexxx", true],
    ["a?c", "abc", true],
    ["a?c", "ac", false],
    ["[a-c]x", "bx", true],
    ["[^a-c]x", "bx", false],
    ["[^a-c]x", "dx", true],
    ["a\\*b", "a*b", true],
    ["a\\*b", "axb", false],
    ["\\*", "*", true],
    ["[\\]a]", "]", true],
    ["[\\-]", "-", true],
    ["[x\\-]", "z", false],
    ["*.log", "app.log", true],
    ["*.log", "app.txt", false],
    ["ä?", "äö", true],
    ["?", "é", true],
  ];
  for (const [p, n, want] of cases) assert.equal(globMatch(p, n), want, `${p} vs ${n}`);
});

test("globMatch: * and ? never match a /", () => {
  assert.equal(globMatch("a*", "ab/c"), false);
  assert.equal(globMatch("a*/b", "abc/b"), true);
  assert.equal(globMatch("a?b", "a/b"), false);
  assert.equal(globMatch("*", "a/b"), false);
});

test("malformed patterns throw BadPatternError (GLOB_INVALID) naming the pattern", () => {
  for (const badPattern of ["[", "[]", "[^]", "a\\", "[a-", "[-]", "[]a]", "[x-]"]) {
    assert.throws(() => globMatch(badPattern, "x"), BadPatternError, badPattern);
    assert.throws(() => globMatch(badPattern, "x"), /invalid pattern/, badPattern);
    assert.throws(() => validateGlob(badPattern), { code: "GLOB_INVALID" }, badPattern);
  }
  assert.throws(() => globMatch("[", "a"), BadPatternError);
  assert.throws(() => globMatch("a\\", "a"), /invalid pattern "a\\\\": trailing backslash/);
  assert.throws(() => globMatch("[a", "a"), /unterminated character class/);
  // A failed match checks the rest of the pattern too (Go does the same).
  assert.throws(() => globMatch("x*[", "abc"), BadPatternError);
});

test("validateGlob accepts well-formed patterns", () => {
  for (const p of ["", "*", "**", "a", "a*b?c", "[a-z]", "[^a]", "\\[", "[\\]]"]) validateGlob(p);
});

test("globMatch is linear in the pattern length: a 20,000-character chunk answers at once", () => {
  const name = "a".repeat(100);
  // In a child process killed after 20 s (the quadratic matcher took about 40 s here).
  const url = new URL("./glob-match.js", import.meta.url);
  assert.equal(evalInChild(url, `m.globMatch("*" + "a".repeat(20000) + "b", "a".repeat(100))`), false);
  assert.equal(globMatch("*" + "a".repeat(20_000), name), false);
  assert.equal(globMatch("a*".repeat(10_000), name), false);
  assert.equal(globMatch("a*".repeat(50), name), true);
  assert.equal(globMatch("[a]".repeat(100), name), true);
  assert.throws(() => globMatch("*" + "a".repeat(20_000) + "[", name), BadPatternError);
});
