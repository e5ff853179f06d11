import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { INLINE_DISCARD_MAX_ENTRIES, detachedDiscard, isSmallTree } from "./discard-dir.js";

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
    for (let i = 0; i <= INLINE_DISCARD_MAX_ENTRIES; i++)
      await writeFile(path.join(build, "root", "a", "b", `f${i}`), "x");
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
    // Large enough not to be deleted in the foreground anyway.
    for (let i = 0; i <= INLINE_DISCARD_MAX_ENTRIES; i++) await writeFile(path.join(build, "x", `f${i}`), "x");
    await detachedDiscard(state)(build);
    assert.equal(existsSync(build), false);
  } finally {
    await rm(state, { recursive: true, force: true });
  }
});

test("a small build dir is deleted in the foreground: no trash, no deleter", async () => {
  const state = await mkdtemp(path.join(tmpdir(), "kiln-discard-"));
  try {
    const build = path.join(state, "build-3");
    await mkdir(path.join(build, "blobs"), { recursive: true });
    for (let i = 0; i < 10; i++) await writeFile(path.join(build, "blobs", `b${i}`), "x");
    await detachedDiscard(state)(build);
    assert.deepEqual(await readdir(state), [], "gone, and no .trash was made");
  } finally {
    await rm(state, { recursive: true, force: true });
  }
});

test("leftovers in the trash get a deleter after a small build only when none is running", async () => {
  const state = await mkdtemp(path.join(tmpdir(), "kiln-discard-"));
  try {
    const trash = path.join(state, ".trash");
    await mkdir(path.join(trash, "build-0-left"), { recursive: true });
    const started: string[][] = [];
    const discard = detachedDiscard(state, (t, paths) => {
      assert.equal(t, trash);
      started.push([...paths]);
    });
    // A live deleter's mark (this process): the small dir goes inline, no second deleter.
    await writeFile(path.join(trash, `.deleter-${process.pid}`), "");
    await mkdir(path.join(state, "build-1", "blobs"), { recursive: true });
    await discard(path.join(state, "build-1"));
    assert.equal(existsSync(path.join(state, "build-1")), false);
    assert.deepEqual(started, []);
    // The mark of a deleter that is gone: removed, and a deleter takes the leftovers (not the mark).
    await rm(path.join(trash, `.deleter-${process.pid}`));
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
    await writeFile(path.join(trash, `.deleter-${dead.stdout}`), "");
    await mkdir(path.join(state, "build-2"), { recursive: true });
    await discard(path.join(state, "build-2"));
    assert.deepEqual(started, [[path.join(trash, "build-0-left")]]);
    assert.deepEqual(await readdir(trash), ["build-0-left"], "the stale mark is removed");
  } finally {
    await rm(state, { recursive: true, force: true });
  }
});

test("a build dir past the entry limit goes through the trash", async () => {
  const state = await mkdtemp(path.join(tmpdir(), "kiln-discard-"));
  try {
    const build = path.join(state, "build-4");
    await mkdir(path.join(build, "a"), { recursive: true });
    for (let i = 0; i < INLINE_DISCARD_MAX_ENTRIES; i++) await writeFile(path.join(build, "a", `f${i}`), "x");
    await detachedDiscard(state)(build);
    assert.equal(existsSync(build), false);
    assert.deepEqual(await readdir(state), [".trash"], "moved into the trash for the deleter");
    await until(async () => (await readdir(path.join(state, ".trash"))).length === 0, 30_000);
  } finally {
    await rm(state, { recursive: true, force: true });
  }
});

test("isSmallTree counts entries at every depth and stops past the limit", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-discard-"));
  try {
    await mkdir(path.join(dir, "a", "b"), { recursive: true });
    await writeFile(path.join(dir, "a", "b", "f"), "x");
    await writeFile(path.join(dir, "g"), "x");
    // a, g, a/b, a/b/f: 4 entries.
    assert.equal(await isSmallTree(dir, 4), true);
    assert.equal(await isSmallTree(dir, 3), false);
    assert.equal(await isSmallTree(path.join(dir, "missing"), 10), false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
