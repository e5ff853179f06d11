import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as assert from "node:assert/strict";
import { PROBE_CHECKS, probeIsolation } from "./probe.js";
import { probeCacheKey, readProbeCache, writeProbeCache } from "./probe-cache.js";
import { buildHelper } from "./testing/busybox-root.js";

const setup = buildHelper();
const skip = setup.reason ?? false;

/** A probe line no real probe prints here (every check failed): seen only when the cache was read. */
const ALL_FAILED = PROBE_CHECKS.map((c) => `${c}=0`).join(" ");

describe("isolation probe cache", { skip }, () => {
  let dir: string;
  let helper: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "kiln-probe-cache-"));
    // A copy of the helper, so that the test can change its identity (mtime) without touching the real one.
    helper = path.join(dir, "kiln-exec");
    await copyFile(setup.helper ?? "", helper);
    await utimes(helper, 1_000_000, 1_000_000);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("the key is stable here and changes with the helper binary and the scratch filesystem", async () => {
    const a = probeCacheKey(helper, dir);
    assert.match(a ?? "", /^[0-9a-f]{64}$/);
    assert.equal(probeCacheKey(helper, dir), a);
    await utimes(helper, 2_000_000, 2_000_000);
    const b = probeCacheKey(helper, dir);
    assert.notEqual(b, a);
    await utimes(helper, 1_000_000, 1_000_000);
    assert.notEqual(probeCacheKey(helper, "/proc"), a, "another filesystem");
    assert.equal(probeCacheKey(path.join(dir, "missing"), dir), undefined, "no helper, no key");
  });

  it("a real probe is stored, and a stored answer under the current key is used instead of probing", async () => {
    const file = path.join(dir, "probe-1.json");
    const first = await probeIsolation({ helperPath: helper, scratchDir: dir, cacheFile: file });
    const stored = JSON.parse(await readFile(file, "utf8")) as { key: string; line: string };
    assert.equal(stored.key, probeCacheKey(helper, dir));
    assert.match(stored.line, /chroot=[01]/);
    // As root on this machine the real probe finds chroot: the stored line is the real answer.
    if (process.getuid?.() === 0) assert.equal(first.chroot, true);
    // Plant an answer no real probe gives here: it comes back, so no probe ran.
    await writeProbeCache(file, stored.key, ALL_FAILED);
    const cached = await probeIsolation({ helperPath: helper, scratchDir: dir, cacheFile: file });
    assert.deepEqual([cached.chroot, cached.mountns, cached.userns, cached.overlay], [false, false, false, false]);
  });

  it("a stored answer carries the helper's features: absent from an older helper's line", async () => {
    const file = path.join(dir, "probe-3.json");
    const key = probeCacheKey(helper, dir) ?? "";
    await writeProbeCache(file, key, `${ALL_FAILED} list-upper=1`);
    assert.equal((await probeIsolation({ helperPath: helper, scratchDir: dir, cacheFile: file })).listUpper, true);
    await writeProbeCache(file, key, ALL_FAILED);
    assert.equal((await probeIsolation({ helperPath: helper, scratchDir: dir, cacheFile: file })).listUpper, false);
  });

  it("another key, another format or a malformed file means probing again (and storing the new answer)", async () => {
    const file = path.join(dir, "probe-2.json");
    const key = probeCacheKey(helper, dir) ?? "";
    for (const content of [
      JSON.stringify({ version: 1, key: "0".repeat(64), line: ALL_FAILED }),
      JSON.stringify({ version: 99, key, line: ALL_FAILED }),
      JSON.stringify({ version: 1, key, line: "chroot=maybe" }),
      "{not json",
    ]) {
      await writeFile(file, content);
      const p = await probeIsolation({ helperPath: helper, scratchDir: dir, cacheFile: file });
      const line = readProbeCache(file, key);
      assert.notEqual(line, undefined, `re-stored after ${content}`);
      assert.notEqual(line, ALL_FAILED);
      if (process.getuid?.() === 0) assert.equal(p.chroot, true, `probed again after ${content}`);
    }
  });

  it("an unwritable cache location only means no cache: the same answer, nothing written or left over", async () => {
    const uncached = await probeIsolation({ helperPath: helper, scratchDir: dir });
    // Under a regular file: ENOTDIR, even for root (whom a read-only mode would not stop).
    const blocker = path.join(dir, "blocker");
    await writeFile(blocker, "a file\n");
    const underFile = path.join(blocker, "isolation-probe.json");
    assert.deepEqual(await probeIsolation({ helperPath: helper, scratchDir: dir, cacheFile: underFile }), uncached);
    assert.equal(await readFile(blocker, "utf8"), "a file\n");
    const key = probeCacheKey(helper, dir) ?? "";
    assert.equal(readProbeCache(underFile, key), undefined);
    // A directory in the cache file's place: the answer is written aside, the rename fails, and the
    // file written aside is removed again.
    const taken = path.join(dir, "taken");
    await mkdir(taken);
    const before = (await readdir(dir)).sort();
    assert.deepEqual(await probeIsolation({ helperPath: helper, scratchDir: dir, cacheFile: taken }), uncached);
    await writeProbeCache(taken, key, ALL_FAILED);
    assert.deepEqual((await readdir(dir)).sort(), before, "no temporary file left");
    assert.ok((await stat(taken)).isDirectory());
    assert.equal(readProbeCache(taken, key), undefined);
  });
});
