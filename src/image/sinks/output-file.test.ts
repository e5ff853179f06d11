import { test } from "node:test";
import assert from "node:assert/strict";
import { lstat, mkdtemp, readFile, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { outputFile } from "./output-file.js";

/** Writes `text` to `file` the way an archive writer does: to outputFile's path, then commit. */
async function write(file: string, text: string, followLinks: boolean): Promise<void> {
  const out = await outputFile(file, { followLinks });
  await writeFile(out.write, text);
  await out.commit();
}

test("a path in a shared directory is never written through a planted link; the user's own --tar-path is", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-output-file-"));
  try {
    const victim = path.join(dir, "victim");
    await writeFile(victim, "keep\n");
    const planted = path.join(dir, "sha256-archive");
    await symlink(victim, planted);
    await write(planted, "archive\n", false); // the warmer's cache entry
    assert.equal(await readFile(victim, "utf8"), "keep\n", "written through the planted link");
    assert.ok((await lstat(planted)).isFile(), "the link is replaced by the file");
    const link = path.join(dir, "out.tar");
    await symlink(victim, link);
    await write(link, "tarball\n", true); // --tar-path through the user's own link
    assert.equal(await readFile(victim, "utf8"), "tarball\n");
    assert.equal(await readlink(link), victim, "the link stays");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
