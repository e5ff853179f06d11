import * as assert from "node:assert/strict";
import { test } from "node:test";
import { cleanContainerPath, compareBytewise, escapesRoot } from "./clean-path.js";

test("cleanContainerPath normalises and clamps at /", () => {
  assert.equal(cleanContainerPath("/a/./b/../c/"), "/a/c");
  assert.equal(cleanContainerPath("a//b"), "/a/b");
  assert.equal(cleanContainerPath("../../x"), "/x");
  assert.equal(cleanContainerPath(""), "/");
  assert.equal(cleanContainerPath("/.."), "/");
});

test("escapesRoot detects climbing names only", () => {
  assert.equal(escapesRoot("../x"), true);
  assert.equal(escapesRoot("a/../../x"), true);
  assert.equal(escapesRoot("a/../x"), false);
  assert.equal(escapesRoot("/abs/x"), false);
  assert.equal(escapesRoot("./a/./b"), false);
});

test("compareBytewise orders like UTF-8 bytes", () => {
  const s = ["\u{1F600}", "\uFFFD", "a", "B"];
  const bytewise = [...s].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  assert.deepEqual([...s].sort(compareBytewise), bytewise);
});
