import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, statfs } from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { findHelper } from "./helper-path.js";
import { SPREAD_MARKER, spreadSubdirectories } from "./spread-dirs.js";

const helper = findHelper() ?? null;
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The inode flags `lsattr -d` prints for `dir` ("-------------Te-------"), or undefined without lsattr. */
function lsattrFlags(dir: string): string | undefined {
  const r = spawnSync("lsattr", ["-d", dir], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim().split(/\s+/)[0] : undefined;
}

describe("spreadSubdirectories", { skip: helper === null && "native/kiln-exec is not built" }, () => {
  let scratch = "";
  before(async () => {
    // Under the repository (a disk filesystem here), not /tmp (tmpfs on some machines).
    await mkdir(path.join(repo, ".tmp"), { recursive: true });
    scratch = await mkdtemp(path.join(repo, ".tmp", "spread-test-"));
  });
  after(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it("sets the top-directory flag on ext4", async (t) => {
    if ((await statfs(scratch)).type !== 0xef53) return t.skip("the repository is not on ext4 here");
    const dir = path.join(scratch, "state");
    await mkdir(dir);
    assert.doesNotMatch(lsattrFlags(dir) ?? "", /T/);
    const r = await spreadSubdirectories(dir, helper);
    assert.equal(r.spread, true, r.reason);
    assert.match(lsattrFlags(dir) ?? "", /T/);
    // The flag is not inherited: a build's directory keeps its subdirectories together.
    const child = path.join(dir, "build-1");
    await mkdir(child);
    assert.doesNotMatch(lsattrFlags(child) ?? "", /T/);
    // Idempotent on a marked directory.
    assert.deepEqual(await spreadSubdirectories(dir, helper), { spread: true });
  });

  it("writeMarker: false (--cleanup) sets the flag but leaves no marker", async (t) => {
    if ((await statfs(scratch)).type !== 0xef53) return t.skip("the repository is not on ext4 here");
    const dir = path.join(scratch, "no-marker");
    await mkdir(dir);
    assert.deepEqual(await spreadSubdirectories(dir, helper, { writeMarker: false }), { spread: true });
    assert.match(lsattrFlags(dir) ?? "", /T/);
    assert.equal(existsSync(path.join(dir, SPREAD_MARKER)), false);
  });

  it("starts the helper once per directory: later calls find the marker", async (t) => {
    if ((await statfs(scratch)).type !== 0xef53) return t.skip("the repository is not on ext4 here");
    const dir = path.join(scratch, "marked");
    await mkdir(dir);
    // A helper that cannot start would report ENOENT: only a marked directory answers without it.
    assert.equal((await spreadSubdirectories(dir, "/nonexistent/kiln-exec")).spread, false);
    assert.deepEqual(await spreadSubdirectories(dir, helper), { spread: true });
    assert.ok(existsSync(path.join(dir, SPREAD_MARKER)), "marker written after the flag was set");
    assert.deepEqual(await spreadSubdirectories(dir, "/nonexistent/kiln-exec"), { spread: true });
    // Deleted and made again: the marker went with it, so the helper is asked again.
    await rm(dir, { recursive: true });
    await mkdir(dir);
    assert.equal((await spreadSubdirectories(dir, "/nonexistent/kiln-exec")).spread, false);
    assert.deepEqual(await spreadSubdirectories(dir, helper), { spread: true });
    assert.match(lsattrFlags(dir) ?? "", /T/);
  });

  it("reports, without throwing, a directory that does not exist", async () => {
    const r = await spreadSubdirectories(path.join(scratch, "missing"), helper);
    assert.equal(r.spread, false);
    assert.match(r.reason ?? "", /ENOENT/);
  });

  it("leaves other filesystems alone without starting the helper", async (t) => {
    if (!existsSync("/dev/shm") || (await statfs("/dev/shm")).type === 0xef53) return t.skip("no tmpfs /dev/shm");
    const dir = await mkdtemp("/dev/shm/kiln-spread-");
    try {
      // A helper that cannot start would report ENOENT: the answer comes from statfs alone.
      assert.deepEqual(await spreadSubdirectories(dir, "/nonexistent/kiln-exec"), {
        spread: false,
        reason: "not ext4 (statfs type 0x1021994)",
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("needs the helper", async () => {
    assert.deepEqual(await spreadSubdirectories(path.join(scratch, "x"), null), {
      spread: false,
      reason: "no kiln-exec helper",
    });
  });
});
