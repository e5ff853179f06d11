import * as assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { copyFileAtomic } from "./atomic-file.js";

test("copyFileAtomic copies a file of the expected size and refuses one of another size", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-copy-"));
  try {
    const src = path.join(dir, "src");
    await writeFile(src, "twelve bytes");
    await copyFileAtomic(src, path.join(dir, "out", "a"), 12);
    assert.equal(await readFile(path.join(dir, "out", "a"), "utf8"), "twelve bytes");
    await assert.rejects(copyFileAtomic(src, path.join(dir, "out", "b"), 13), /has 12 bytes, expected 13/);
    assert.deepEqual(await readdir(path.join(dir, "out")), ["a"], "no temp file and no partial copy left");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
