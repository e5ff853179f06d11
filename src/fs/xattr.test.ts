import * as assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { applyXattrs, pathBatches, readXattr, readXattrsMatching, removeXattr, toolBatches } from "./xattr.js";
import { xattrRequest } from "./special-node.js";
import { findTool } from "./exec-tool.js";

test("pathBatches bounds each tool run by argument bytes and count, keeping order", () => {
  const paths = Array.from({ length: 10 }, (_, i) => `/p/${i}`); // 5 bytes + NUL each
  assert.deepEqual(pathBatches([]), []);
  assert.deepEqual(pathBatches(paths), [paths]);
  const byBytes = pathBatches(paths, 12);
  assert.deepEqual(byBytes, [
    paths.slice(0, 2),
    paths.slice(2, 4),
    paths.slice(4, 6),
    paths.slice(6, 8),
    paths.slice(8),
  ]);
  const byCount = pathBatches(paths, 1 << 20, 4);
  assert.deepEqual(byCount, [paths.slice(0, 4), paths.slice(4, 8), paths.slice(8)]);
  assert.deepEqual(pathBatches(["/a-long-path"], 3), [["/a-long-path"]], "a path longer than the limit runs alone");
  assert.deepEqual(byBytes.flat(), paths);
});

test("xattrs of many files through the batched tool runs: every file's value comes back, and removal reaches every file", async (t) => {
  if ((await findTool("setfattr")) === undefined || (await findTool("getfattr")) === undefined) {
    return t.skip("attr tools not installed");
  }
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-xattr-"));
  try {
    const files = Array.from({ length: 40 }, (_, i) => path.join(dir, `f${i}`));
    for (const f of files) await writeFile(f, "x");
    const failed = await applyXattrs(
      files.map((f, i) => ({ hostPath: f, attrs: new Map([["user.n", Buffer.from(String(i))]]) })),
    );
    if (failed.length > 0) return t.skip(`this filesystem refuses user xattrs: ${failed[0]?.reason ?? ""}`);
    const read = await readXattr(files, "user.n");
    assert.equal(read.size, 40);
    files.forEach((f, i) => assert.equal(read.get(f)?.toString(), String(i)));
    const matching = await readXattrsMatching(files, "^user\\.");
    assert.equal(matching.size, 40);
    assert.ok(await removeXattr(files, "user.n"));
    assert.equal((await readXattr(files, "user.n")).size, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("xattrs through more than one tool run: every value is attributed to its own file, also for names getfattr escapes", async (t) => {
  if ((await findTool("setfattr")) === undefined || (await findTool("getfattr")) === undefined) {
    return t.skip("attr tools not installed");
  }
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-xattr-"));
  try {
    // 1,500 files: each read runs getfattr twice (1,024 + 476 paths), the two runs concurrently.
    const names = ["with space", "back\\slash", "equals=sign", "ünï", "new\nline"];
    const files = Array.from({ length: 1500 }, (_, i) => path.join(dir, `${names[i % names.length] ?? ""}-${i}`));
    const batches = toolBatches(files);
    assert.deepEqual(
      batches.map((b) => b.length),
      [1024, 476],
    );
    assert.deepEqual(batches.flat(), files);
    for (const f of files) await writeFile(f, "x");
    // Every third file gets no attribute: getfattr then exits non-zero, and those files must stay absent.
    const tagged = files.filter((_, i) => i % 3 !== 0);
    const kValue = (f: string): Buffer => Buffer.from([0, 0xff, files.indexOf(f) & 0xff]);
    const failed = await applyXattrs(
      tagged.map((f) => ({
        hostPath: f,
        attrs: new Map([
          ["user.n", Buffer.from(path.basename(f))],
          ["user.k", kValue(f)],
        ]),
      })),
    );
    if (failed.length > 0) return t.skip(`this filesystem refuses user xattrs: ${failed[0]?.reason ?? ""}`);

    const read = await readXattr(files, "user.n");
    assert.equal(read.size, tagged.length);
    for (const f of tagged) assert.equal(read.get(f)?.toString(), path.basename(f), f);

    const matching = await readXattrsMatching(files, "^user\\.");
    assert.equal(matching.size, tagged.length);
    for (const f of tagged) {
      const attrs = matching.get(f);
      assert.equal(attrs?.get("user.n")?.toString(), path.basename(f), f);
      assert.deepEqual(attrs?.get("user.k"), kValue(f), f);
      assert.equal(attrs?.size, 2, f);
    }

    assert.ok(await removeXattr(tagged.slice(0, 1100), "user.n"), "removal over two runs");
    const left = await readXattr(files, "user.n");
    assert.deepEqual([...left.keys()].sort(), tagged.slice(1100).sort());
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a failed setfattr run names each file with a bounded reason (its output lists every file)", async (t) => {
  if ((await findTool("setfattr")) === undefined) return t.skip("setfattr not installed");
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-xattr-"));
  try {
    // Files that do not exist: setfattr reports each one, so its whole output grows with the batch.
    const reqs = Array.from({ length: 300 }, (_, i) => ({
      hostPath: path.join(dir, `missing-${i}`),
      attrs: new Map([["user.n", Buffer.from("v")]]),
    }));
    const failed = await applyXattrs(reqs);
    assert.deepEqual(
      failed.map((f) => f.path),
      reqs.map((r) => r.hostPath),
    );
    for (const f of failed) {
      assert.match(f.reason, /^xattrs not applied: setfattr failed: /);
      assert.ok(f.reason.length < 1024, `reason of ${f.reason.length} characters`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("xattrRequest drops values the kernel refuses (over 64 KiB) and names them", () => {
  const { request, skipped } = xattrRequest("/x", {
    type: "file",
    xattrs: new Map([
      ["user.max", Buffer.alloc(64 * 1024)],
      ["user.over", Buffer.alloc(64 * 1024 + 1)],
    ]),
  });
  assert.deepEqual([...(request?.attrs.keys() ?? [])], ["user.max"]);
  assert.equal(skipped.length, 1);
  assert.match(skipped[0] ?? "", /user\.over.*65537 bytes.*65536/);
});
