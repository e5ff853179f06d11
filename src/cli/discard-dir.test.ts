import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { detachedDiscard } from "./discard-dir.js";

/** Resolves once `check` holds; fails after `ms`. Polls a condition, not a duration. */
async function until(check: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("a build dir is moved out at once and deleted by a detached process, with older trash", async () => {
  const state = await mkdtemp(path.join(tmpdir(), "kiln-discard-"));
  try {
    const build = path.join(state, "build-1");
    await mkdir(path.join(build, "root", "a", "b"), { recursive: true });
    for (let i = 0; i < 200; i++) await writeFile(path.join(build, "root", "a", "b", `f${i}`), "x");
    const stale = path.join(state, ".trash", "build-0-dead");
    await mkdir(path.join(stale, "x"), { recursive: true });
    await detachedDiscard(state)(build);
    assert.equal(existsSync(build), false, "the build dir is gone when discard returns");
    await until(async () => (await readdir(path.join(state, ".trash"))).length === 0, 30_000);
    assert.deepEqual(await readdir(state), [".trash"]);
  } finally {
    await rm(state, { recursive: true, force: true });
  }
});

test("a dir that cannot be renamed into the trash is deleted in the foreground", async () => {
  const state = await mkdtemp(path.join(tmpdir(), "kiln-discard-"));
  try {
    await writeFile(path.join(state, ".trash"), "not a directory");
    const build = path.join(state, "build-2");
    await mkdir(path.join(build, "x"), { recursive: true });
    await detachedDiscard(state)(build);
    assert.equal(existsSync(build), false);
  } finally {
    await rm(state, { recursive: true, force: true });
  }
});
