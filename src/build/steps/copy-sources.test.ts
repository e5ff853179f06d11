import * as assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { DirContext } from "../../context/index.js";
import { contextFileInputs } from "../cache-inputs.js";
import { matchSources } from "./copy-sources.js";

/** A context dir and, beside it, a host file no source may read. */
async function fixture(): Promise<{ base: string; ctx: string; outside: string; cleanup: () => Promise<void> }> {
  const base = await mkdtemp(path.join(tmpdir(), "kiln-sources-"));
  const ctx = path.join(base, "ctx");
  const outside = path.join(base, "host-secret.txt");
  await mkdir(path.join(ctx, "a/deep/er"), { recursive: true });
  await mkdir(path.join(ctx, "b"), { recursive: true });
  await writeFile(outside, "host secret\n");
  await writeFile(path.join(ctx, "top.txt"), "top\n");
  await writeFile(path.join(ctx, "b/real.txt"), "real\n");
  await writeFile(path.join(ctx, "a/deep/er/x.txt"), "deep\n");
  return { base, ctx, outside, cleanup: () => rm(base, { recursive: true, force: true }) };
}

test("a `**` match that is a symlink is followed inside the context, never to a host file", async () => {
  const f = await fixture();
  try {
    await symlink(f.outside, path.join(f.ctx, "a/evil.txt")); // absolute: re-rooted in the context
    await symlink("../../../host-secret.txt", path.join(f.ctx, "a/deep/up.txt")); // `..` stops at the root
    await symlink("../b/real.txt", path.join(f.ctx, "a/good.txt"));
    const from = await DirContext.open(f.ctx, []);
    const found = await matchSources(from, ["**/*.txt"], { parents: false, excludes: [] });
    for (const m of found) {
      assert.ok(m.abs.startsWith(f.ctx + path.sep), `${m.rel} is read from ${m.abs}`);
      assert.ok(!m.stat.isSymbolicLink(), m.rel);
    }
    assert.deepEqual(found.map((m) => m.rel).sort(), ["a/deep/er/x.txt", "a/good.txt", "b/real.txt", "top.txt"]);
    const good = found.find((m) => m.rel === "a/good.txt");
    assert.equal(await readFile(good?.abs ?? "", "utf8"), "real\n");
  } finally {
    await f.cleanup();
  }
});

test("the cache key of a `**` source covers what the copy reads, at any depth", async () => {
  const f = await fixture();
  try {
    const from = await DirContext.open(f.ctx, []);
    const keys = async (): Promise<string[]> => (await contextFileInputs(from, ["**/*.txt"])).map(([k]) => k);
    assert.deepEqual(await keys(), ["file:a/deep/er/x.txt", "file:b/real.txt", "file:top.txt"]);
    const before = await contextFileInputs(from, ["**/*.txt"]);
    await writeFile(path.join(f.ctx, "a/deep/er/x.txt"), "deeper\n");
    assert.notDeepEqual(
      await contextFileInputs(from, ["**/*.txt"]),
      before,
      "an edit four levels down changes the key",
    );
  } finally {
    await f.cleanup();
  }
});
