import * as assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { resolveInRoot, toContainerPath } from "./resolve-in-root.js";

/** A temp dir with `root/` (the jail) and a sibling `canary/` that resolution must never reach. */
async function makeSandbox(): Promise<{ root: string; cleanup: () => Promise<void> }> {
  const base = await mkdtemp(path.join(tmpdir(), "kiln-rir-"));
  const root = path.join(base, "root");
  await mkdir(root);
  await mkdir(path.join(base, "canary"));
  return { root, cleanup: () => rm(base, { recursive: true, force: true }) };
}

async function assertCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, { code });
}

test("resolveInRoot re-roots absolute links, clamps .. and keeps missing components", async () => {
  const sb = await makeSandbox();
  try {
    const r = sb.root;
    await mkdir(path.join(r, "real/dir"), { recursive: true });
    await symlink("/real", path.join(r, "abs"));
    await symlink("../../../../..", path.join(r, "up"));
    await symlink("dir", path.join(r, "real/rel"));
    await symlink("/../canary", path.join(r, "esc"));
    assert.equal(await resolveInRoot(r, "/abs/dir/x"), path.join(r, "real/dir/x"));
    assert.equal(await resolveInRoot(r, "up/canary/secret"), path.join(r, "canary/secret"));
    assert.equal(await resolveInRoot(r, "/real/rel/y/z"), path.join(r, "real/dir/y/z"));
    assert.equal(await resolveInRoot(r, "/esc/secret"), path.join(r, "canary/secret"));
    assert.equal(await resolveInRoot(r, "/abs"), path.join(r, "abs"));
    assert.equal(await resolveInRoot(r, "/abs", { followFinal: true }), path.join(r, "real"));
    assert.equal(await resolveInRoot(r, "/missing/../real"), path.join(r, "real"));
    assert.equal(await resolveInRoot(r, "/"), r);
    assert.equal(await resolveInRoot(r, "../../.."), r);
  } finally {
    await sb.cleanup();
  }
});

test("resolveInRoot: a file in the middle of the path is kept lexically", async () => {
  const sb = await makeSandbox();
  try {
    await writeFile(path.join(sb.root, "f"), "x");
    assert.equal(await resolveInRoot(sb.root, "/f/g"), path.join(sb.root, "f/g"));
  } finally {
    await sb.cleanup();
  }
});

test("resolveInRoot throws FS_LOOP on symlink loops", async () => {
  const sb = await makeSandbox();
  try {
    await symlink("b", path.join(sb.root, "a"));
    await symlink("a", path.join(sb.root, "b"));
    await symlink("self", path.join(sb.root, "self"));
    await assertCode(resolveInRoot(sb.root, "/a/x"), "FS_LOOP");
    await assertCode(resolveInRoot(sb.root, "/self", { followFinal: true }), "FS_LOOP");
    // Not following the final link: no loop is observed.
    assert.equal(await resolveInRoot(sb.root, "/self"), path.join(sb.root, "self"));
  } finally {
    await sb.cleanup();
  }
});

test("resolveInRoot follows exactly 40 hops and fails at 41", async () => {
  const sb = await makeSandbox();
  try {
    for (let i = 0; i < 41; i++) await symlink(`l${i + 1}`, path.join(sb.root, `l${i}`));
    await mkdir(path.join(sb.root, "l41"));
    assert.equal(await resolveInRoot(sb.root, "/l1/x"), path.join(sb.root, "l41/x"));
    await assertCode(resolveInRoot(sb.root, "/l0/x"), "FS_LOOP");
  } finally {
    await sb.cleanup();
  }
});

test("toContainerPath rejects paths outside the root", () => {
  assert.equal(toContainerPath("/r", "/r/a/b"), "/a/b");
  assert.equal(toContainerPath("/r", "/r"), "/");
  assert.throws(() => toContainerPath("/r", "/other"));
  assert.equal(toContainerPath("/r", "/r/..a"), "/..a");
});
