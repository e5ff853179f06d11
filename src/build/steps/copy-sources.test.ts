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

test("a symlink never reads what .dockerignore excludes (BuildKit's context has no such entry)", async () => {
  const f = await fixture();
  try {
    await mkdir(path.join(f.ctx, "secret"));
    await writeFile(path.join(f.ctx, "secret/s"), "secret\n");
    await writeFile(path.join(f.ctx, ".env"), "TOPSECRET\n");
    await writeFile(path.join(f.ctx, "b/drop.txt"), "dropped\n");
    await symlink(".env", path.join(f.ctx, "envlink"));
    await symlink("secret", path.join(f.ctx, "dirlink"));
    await symlink("b", path.join(f.ctx, "blink"));
    await symlink("hop", path.join(f.ctx, "via")); // via -> hop (excluded) -> b
    await symlink("b", path.join(f.ctx, "hop"));
    const from = await DirContext.open(f.ctx, [".env", "secret/", "b/drop.txt", "hop"]);
    for (const source of ["envlink", "dirlink/s", "dirlink", "via/real.txt"]) {
      await assert.rejects(from.resolve(source), /not found in the build context/, source);
    }
    assert.deepEqual(await from.resolve("env*"), [], "a wildcard match that leads to an excluded file");
    assert.equal(await from.follow("envlink"), undefined);
    // Below a linked directory, entries are excluded by where they really are.
    const walked: string[] = [];
    for await (const e of from.walk("blink")) walked.push(e.rel);
    assert.deepEqual(walked, ["blink/real.txt"]);
    const found = await matchSources(from, ["**/*.txt"], { parents: false, excludes: [] });
    assert.ok(!found.some((m) => m.abs.endsWith("drop.txt")), found.map((m) => m.rel).join(" "));
  } finally {
    await f.cleanup();
  }
});

test("a directory .dockerignore excludes with `!` re-includes stays reachable through a link, filtered", async () => {
  const f = await fixture();
  try {
    await mkdir(path.join(f.ctx, "secret"));
    await writeFile(path.join(f.ctx, "secret/s"), "secret\n");
    await writeFile(path.join(f.ctx, "secret/keep"), "keep\n");
    await symlink("secret", path.join(f.ctx, "dirlink"));
    const from = await DirContext.open(f.ctx, ["secret", "!secret/keep"]);
    const [dir] = await from.resolve("dirlink");
    assert.ok(dir?.stat.isDirectory());
    const walked: string[] = [];
    for await (const e of from.walk("dirlink")) walked.push(e.rel);
    assert.deepEqual(walked, ["dirlink/keep"]);
  } finally {
    await f.cleanup();
  }
});
