import { test } from "node:test";
import assert from "node:assert/strict";
import { jsonAnnotation } from "./json-annotation.js";

test("jsonAnnotation: the annotation's JSON object, else undefined", () => {
  const a = { obj: '{"v":1,"slots":[]}', list: "[1]", num: "3", str: '"x"', nul: "null", bad: "{nope" };
  assert.deepEqual(jsonAnnotation(a, "obj"), { v: 1, slots: [] });
  assert.deepEqual(jsonAnnotation(a, "list"), [1], "an array is an object to the caller's field checks");
  for (const name of ["num", "str", "nul", "bad", "absent"]) assert.equal(jsonAnnotation(a, name), undefined, name);
  assert.equal(jsonAnnotation(undefined, "obj"), undefined);
});
