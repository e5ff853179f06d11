import { test } from "node:test";
import * as assert from "node:assert/strict";
import { filterContext, type ContextEntry } from "./context-filter.js";
import { DockerfileError } from "./errors.js";
import { readConformanceJson } from "./conformance-path.test-helper.js";

interface WalkCase {
  test: string;
  tree: ContextEntry[];
  includePatterns: string[];
  excludePatterns: string[];
  expectedWalk: string[];
}
const cases = readConformanceJson<{ fsutilWalkCases: { cases: WalkCase[] } }>("dockerignore-cases.json");

test("fsutil walk cases: include and exclude filtering in walk order", () => {
  assert.equal(cases.fsutilWalkCases.cases.length, 24);
  for (const c of cases.fsutilWalkCases.cases) {
    const got = filterContext(c.tree, { includePatterns: c.includePatterns, excludePatterns: c.excludePatterns });
    assert.deepEqual(
      got.map((e) => `${e.type} ${e.path}`),
      c.expectedWalk,
      `${c.test} I=${JSON.stringify(c.includePatterns)} E=${JSON.stringify(c.excludePatterns)}`,
    );
  }
});

test("walk order is depth first by name, implicit parents are created", () => {
  const got = filterContext([
    { path: "foo-x", type: "file" },
    { path: "foo/a", type: "file" },
  ]);
  assert.deepEqual(
    got.map((e) => `${e.type} ${e.path}`),
    ["dir foo", "file foo/a", "file foo-x"],
  );
  assert.throws(() => filterContext([], { excludePatterns: ["!"] }), DockerfileError);
});
