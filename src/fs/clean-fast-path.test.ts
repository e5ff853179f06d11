import * as assert from "node:assert/strict";
import { test } from "node:test";
import { cleanContainerPath } from "./clean-path.js";
import { IgnoreList } from "./ignore-list.js";

/** Reference: clean by segments, no shortcut (the fast path for already clean paths must agree). */
function reference(p: string): string {
  const out: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") out.pop();
    else out.push(seg);
  }
  return "/" + out.join("/");
}

test("cleanContainerPath: the already-clean shortcut agrees with cleaning by segments", () => {
  const parts = ["", ".", "..", "...", ".a", "a.", "..a", "a", "b c", "ü"];
  const seen = new Set<string>();
  for (const lead of ["", "/", "//"])
    for (const x of parts)
      for (const y of parts)
        for (const tail of ["", "/", "/.", "/.."]) {
          const p = `${lead}${x}/${y}${tail}`;
          if (seen.has(p)) continue;
          seen.add(p);
          assert.equal(cleanContainerPath(p), reference(p), JSON.stringify(p));
        }
  for (const p of ["/", "/a", "/a/b", "/.a", "/a/...", "/a/..b", "/a.", "/a/b./c"])
    assert.equal(cleanContainerPath(p), p);
});

test("IgnoreList.ignores cleans what it is given before matching literal rules", () => {
  const ig = IgnoreList.create({ stateDir: "/kaniko", volumes: ["/data"], ignorePaths: ["/opt/*/cache"] });
  assert.equal(ig.ignores("kaniko//x"), true);
  assert.equal(ig.ignores("/var/./run/"), true);
  assert.equal(ig.ignores("/etc/../var/run/x"), true);
  assert.equal(ig.ignores("/data/../datax"), false);
  assert.equal(ig.ignores("/tmp/apt-key-gpghome/"), false, "prefix-only rule, path itself");
  assert.equal(ig.ignores("/tmp//apt-key-gpghome/./k"), true);
  assert.equal(ig.ignores("/opt/app//cache/f"), true);
});
