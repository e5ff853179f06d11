import * as assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { FileIndex, type IndexEntry } from "../file-index.js";
import { ColumnarIndex, encodeColumnarIndex } from "./columnar-index.js";

const entry = (type: "dir" | "file"): IndexEntry => ({
  type,
  mode: type === "dir" ? 0o755 : 0o644,
  uid: 0,
  gid: 0,
  size: 0,
  mtimeNs: 0n,
  ctimeNs: 0n,
  ino: 1,
  dev: 1,
  nlink: 1,
});

/** The stored bytes of /a with three children, and where their sibling links [-1, 2, 3, -1] sit. */
function stored(): { data: Buffer; at: number } {
  const index = new FileIndex();
  index.set("/a", entry("dir"));
  for (const n of ["b", "c", "d"]) index.set(`/a/${n}`, entry("file"));
  const data = encodeColumnarIndex(index, {
    kind: "stack",
    key: "k",
    whiteouts: [],
    opaqueDirs: [],
    implicitDirs: [],
    fixups: [],
  });
  const links = Buffer.from(new Int32Array([-1, 2, 3, -1]).buffer);
  const at = data.indexOf(links);
  assert.ok(at > 0 && data.indexOf(links, at + 1) < 0, "the sibling column is found once");
  return { data, at };
}

/** Writes `v` as sibling link `i` and signs the bytes again, as a forger with write access to the cache could. */
function forge(s: { data: Buffer; at: number }, i: number, v: number): Buffer {
  const out = Buffer.from(s.data);
  out.writeInt32LE(v, s.at + 4 * i);
  createHash("sha256").update(out.subarray(40)).digest().copy(out, 8);
  return out;
}

test("a stored index reads back; one whose sibling links loop or leave the index is refused", () => {
  const s = stored();
  const ok = ColumnarIndex.decode(s.data, "stack", "k");
  assert.deepEqual(ok.childNamesAt(ok.find("/a")), ["b", "c", "d"]);
  // c's next sibling is b again: a loop childNamesAt would follow forever.
  assert.throws(() => ColumnarIndex.decode(forge(s, 2, 1), "stack", "k"), /bad sibling links/);
  assert.throws(() => ColumnarIndex.decode(forge(s, 2, 99), "stack", "k"), /bad sibling links/);
  assert.throws(() => ColumnarIndex.decode(forge(s, 3, 0), "stack", "k"), /bad sibling links/);
});
