import { test } from "node:test";
import assert from "node:assert/strict";
import { compositeKey, inputFingerprints } from "./key.js";
import { explainDifference } from "./explain.js";

test("framing is unambiguous: moving bytes between inputs or names changes the key", () => {
  const k = compositeKey([
    ["a", "bc"],
    ["d", ""],
  ]);
  assert.match(k, /^[0-9a-f]{64}$/);
  assert.notEqual(
    k,
    compositeKey([
      ["a", "b"],
      ["cd", ""],
    ]),
  );
  assert.notEqual(k, compositeKey([["a", "bcd"]]));
  assert.notEqual(
    k,
    compositeKey([
      ["d", ""],
      ["a", "bc"],
    ]),
  );
  assert.equal(
    k,
    compositeKey([
      ["a", Buffer.from("bc")],
      ["d", ""],
    ]),
  );
});

test("identical inputs give identical keys (no randomness, no time)", () => {
  const inputs = [
    ["parent", "x"],
    ["arg:V", "1"],
  ] as const;
  assert.equal(compositeKey(inputs), compositeKey([...inputs]));
});

test("fingerprints hide values and explain names the changed inputs, parent last", () => {
  const before = inputFingerprints([
    ["parent", "p1"],
    ["arg:V", "secret-1"],
    ["file:src/a", "h1"],
    ["env:GONE", "x"],
  ]);
  assert.ok(!JSON.stringify(before).includes("secret-1"));
  const now = inputFingerprints([
    ["parent", "p2"],
    ["arg:V", "secret-2"],
    ["file:src/a", "h1"],
    ["file:src/b", "h2"],
  ]);
  assert.deepEqual(explainDifference(now, before), [
    "build arg V changed",
    "file src/b added",
    "env GONE removed",
    "the result of an earlier step changed",
  ]);
  assert.deepEqual(explainDifference(before, before), []);
});
