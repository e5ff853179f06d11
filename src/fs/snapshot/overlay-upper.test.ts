import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import type { BigIntStats } from "node:fs";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { FileIndex } from "../file-index.js";
import { IgnoreList } from "../ignore-list.js";
import { STACK_MIN_BYTES, STACK_MIN_ENTRIES, mergeOverlayUpper, shouldStack } from "./overlay-upper.js";

function fakeEntries(n: number, size = 1n): { st: BigIntStats }[] {
  const st = { isFile: () => true, size } as unknown as BigIntStats;
  return Array.from({ length: n }, () => ({ st }));
}

test("shouldStack: many entries or many bytes", () => {
  assert.equal(shouldStack(fakeEntries(STACK_MIN_ENTRIES - 1)), false);
  assert.equal(shouldStack(fakeEntries(STACK_MIN_ENTRIES)), true);
  assert.equal(shouldStack(fakeEntries(1, BigInt(STACK_MIN_BYTES))), true);
  assert.equal(shouldStack(fakeEntries(2, BigInt(STACK_MIN_BYTES / 4))), false);
});

const root = process.getuid?.() === 0 && existsSync("/usr/bin/setfattr");

test("mergeOverlayUpper offers only large uppers for stacking, and merges when stacking is declined", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "kiln-stack-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const rootDir = path.join(dir, "root");
  const upper = path.join(dir, "upper");
  await mkdir(path.join(rootDir, "etc"), { recursive: true });
  await mkdir(path.join(upper, "etc"), { recursive: true });
  await writeFile(path.join(upper, "etc", "one"), "1");
  const index = await FileIndex.fromWalk(rootDir);
  const offered: string[] = [];
  const stack = (u: string): Promise<boolean> => {
    offered.push(u);
    return Promise.resolve(false);
  };
  await mergeOverlayUpper(rootDir, upper, index, { stack });
  assert.deepEqual(offered, [], "a small upper is copied, not stacked");
  assert.ok(index.has("/etc/one"));

  await mkdir(path.join(upper, "many"), { recursive: true });
  for (let i = 0; i < STACK_MIN_ENTRIES; i++) await writeFile(path.join(upper, "many", `f${i}`), String(i));
  const changes = await mergeOverlayUpper(rootDir, upper, index, { stack });
  assert.deepEqual(offered, [path.resolve(upper)]);
  assert.ok(existsSync(path.join(rootDir, "many", "f0")), "declined: merged");
  assert.equal(changes.changed.length, STACK_MIN_ENTRIES + 2); // + /many and the shell of /etc
});

test(
  "mergeOverlayUpper never stacks an opaque dir that would hide ignored paths",
  { skip: !root && "needs root and setfattr (trusted.* xattrs)" },
  async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "kiln-stack-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const rootDir = path.join(dir, "root");
    const upper = path.join(dir, "upper");
    await mkdir(path.join(rootDir, "var", "run"), { recursive: true });
    await writeFile(path.join(rootDir, "var", "run", "pid"), "1");
    await mkdir(path.join(upper, "var"), { recursive: true });
    for (let i = 0; i < STACK_MIN_ENTRIES; i++) await writeFile(path.join(upper, "var", `f${i}`), String(i));
    execFileSync("setfattr", ["-n", "trusted.overlay.opaque", "-v", "y", path.join(upper, "var")]);
    const ignore = IgnoreList.create({ ignoreVarRun: true });
    const index = await FileIndex.fromWalk(rootDir);
    let offered = 0;
    const changes = await mergeOverlayUpper(rootDir, upper, index, {
      ignore,
      stack: () => {
        offered++;
        return Promise.resolve(true);
      },
    });
    assert.equal(offered, 0);
    assert.deepEqual(changes.opaqueDirs, ["/var"]);
    assert.ok(existsSync(path.join(rootDir, "var", "run", "pid")), "the ignored path survives the merge");
  },
);
