import * as assert from "node:assert/strict";
import { chmod, chown, mkdir, rename, rm, symlink, unlink, utimes, writeFile, stat } from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { changesForPaths } from "./changes-for-paths.js";
import { FileIndex } from "./file-index.js";
import { IgnoreList } from "./ignore-list.js";
import { applySpecs, isRoot, makeSandbox } from "./test-helpers.js";
import { gnuFind } from "./find-walk.js";
import { walkChanges } from "./walk-changes.js";

async function base(root: string): Promise<FileIndex> {
  const index = new FileIndex();
  await applySpecs(
    root,
    [
      { name: "etc/", type: "dir", mtime: 100 },
      { name: "etc/passwd", body: "root\n", mtime: 100 },
      { name: "etc/hosts", body: "hosts", mtime: 100 },
      { name: "etc/group", body: "g", mtime: 100 },
      { name: "lib/", type: "dir", mtime: 100 },
      { name: "lib/a/", type: "dir", mtime: 100 },
      { name: "lib/a/b", body: "b", mtime: 100 },
      { name: "lib/a/c", body: "c", mtime: 100 },
      { name: "link", type: "symlink", linkname: "etc", mtime: 100 },
      { name: "same", body: "aaaa", mtime: 100 },
    ],
    { index },
  );
  return index;
}

test("index from extraction equals index from a walk, and no changes are seen right after extraction", async () => {
  const sb = await makeSandbox();
  try {
    const index = await base(sb.root);
    const walked = await FileIndex.fromWalk(sb.root);
    assert.deepEqual([...walked.paths()].sort(), [...index.paths()].sort());
    for (const p of walked.paths()) assert.deepEqual(walked.get(p), index.get(p), p);
    assert.deepEqual(await walkChanges(sb.root, index), { changed: [], deleted: [], opaqueDirs: [] });
  } finally {
    await sb.cleanup();
  }
});

test("walkChanges sees adds, edits, deletes, type changes, chmod, chown, touch, link retarget", async () => {
  const sb = await makeSandbox();
  try {
    const r = sb.root;
    const index = await base(r);
    await writeFile(path.join(r, "etc/new"), "n"); // add
    await writeFile(path.join(r, "etc/passwd"), "root\nx\n"); // edit (size)
    await rm(path.join(r, "lib/a"), { recursive: true }); // delete a dir: only the dir is listed
    await unlink(path.join(r, "etc/group"));
    await chmod(path.join(r, "etc/hosts"), 0o600);
    await unlink(path.join(r, "link"));
    await symlink("lib", path.join(r, "link"));
    if (isRoot()) await chown(path.join(r, "same"), 5, 5);
    const changes = await walkChanges(r, index, { update: true });
    assert.deepEqual(changes.changed, [
      "/etc",
      "/etc/hosts",
      "/etc/new",
      "/etc/passwd",
      "/lib",
      "/link",
      ...(isRoot() ? ["/same"] : []),
    ]);
    assert.deepEqual(changes.deleted, ["/etc/group", "/lib/a"]);
    assert.equal(index.has("/lib/a/b"), false);
    assert.deepEqual(await walkChanges(r, index), { changed: [], deleted: [], opaqueDirs: [] }, "update applied");
    // touch only
    await utimes(path.join(r, "etc/hosts"), 5000, 5000);
    assert.deepEqual((await walkChanges(r, index, { update: true })).changed, ["/etc/hosts"]);
  } finally {
    await sb.cleanup();
  }
});

test("same-size same-mtime rewrite is detected through ctime / inode", async () => {
  const sb = await makeSandbox();
  try {
    const r = sb.root;
    const index = await base(r);
    const before = await stat(path.join(r, "same"));
    await writeFile(path.join(r, "same"), "bbbb");
    await utimes(path.join(r, "same"), before.atime, before.mtime); // hide the mtime change
    // rename-over gives a new inode with identical metadata otherwise
    await writeFile(path.join(r, "tmp"), "ROOT\n");
    await utimes(path.join(r, "tmp"), 100, 100);
    await rename(path.join(r, "tmp"), path.join(r, "etc/passwd"));
    await utimes(path.join(r, "etc"), 100, 100);
    const ch = await walkChanges(r, index);
    assert.ok(ch.changed.includes("/same"));
    assert.ok(ch.changed.includes("/etc/passwd"));
  } finally {
    await sb.cleanup();
  }
});

test("type change dir -> file lists the path as changed and not its old children", async () => {
  const sb = await makeSandbox();
  try {
    const r = sb.root;
    const index = await base(r);
    await rm(path.join(r, "lib/a"), { recursive: true });
    await writeFile(path.join(r, "lib/a"), "file now");
    await rm(path.join(r, "etc/passwd"));
    await mkdir(path.join(r, "etc/passwd"));
    const ch = await walkChanges(r, index, { update: true });
    assert.deepEqual(ch.changed, ["/etc", "/etc/passwd", "/lib", "/lib/a"]);
    assert.deepEqual(ch.deleted, []);
    assert.equal(index.has("/lib/a/b"), false);
    assert.equal(index.get("/lib/a")?.type, "file");
  } finally {
    await sb.cleanup();
  }
});

test("walkChanges skips ignored paths in both directions", async () => {
  const sb = await makeSandbox();
  try {
    const r = sb.root;
    const index = await base(r);
    await mkdir(path.join(r, "kaniko"));
    await writeFile(path.join(r, "kaniko/state"), "s");
    await rm(path.join(r, "lib"), { recursive: true });
    const ignore = IgnoreList.create({ stateDir: "/kaniko", ignorePaths: ["/lib"] });
    const ch = await walkChanges(r, index, { ignore });
    assert.deepEqual(ch, { changed: [], deleted: [], opaqueDirs: [] });
  } finally {
    await sb.cleanup();
  }
});

test("changesForPaths stats only the given paths, their descendants and parents", async () => {
  const sb = await makeSandbox();
  try {
    const r = sb.root;
    const index = await base(r);
    await mkdir(path.join(r, "app/src"), { recursive: true });
    await writeFile(path.join(r, "app/src/main.js"), "m");
    await writeFile(path.join(r, "etc/unrelated"), "u"); // not reported: not given
    await mkdir(path.join(r, "etc/work"));
    const ch = await changesForPaths(r, index, ["/app", "/link/work", "/gone"]);
    assert.deepEqual(ch.changed, ["/app", "/app/src", "/app/src/main.js", "/etc/work"]);
    assert.deepEqual(ch.deleted, []);
    assert.equal(index.has("/etc/unrelated"), false);
    assert.equal(
      index.get("/etc")?.mtimeNs,
      (await stat(path.join(r, "etc"), { bigint: true })).mtimeNs,
      "parent refreshed",
    );
    await rm(path.join(r, "etc/hosts"));
    assert.deepEqual((await changesForPaths(r, index, ["/etc/hosts"])).deleted, ["/etc/hosts"]);
  } finally {
    await sb.cleanup();
  }
});

test("FileIndex subtree operations and clone independence", () => {
  const e = {
    type: "file" as const,
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: 1,
    mtimeNs: 0n,
    ctimeNs: 0n,
    ino: 1,
    dev: 1,
    nlink: 1,
  };
  const d = { ...e, type: "dir" as const };
  const idx = new FileIndex();
  idx.set("/a", d);
  idx.set("/a/b", d);
  idx.set("/a/b/c", e);
  idx.set("/a/x", e);
  idx.set("/z", e);
  assert.deepEqual(idx.childrenOf("/a").sort(), ["/a/b", "/a/x"]);
  assert.deepEqual(idx.childrenOf("/").sort(), ["/a", "/z"]);
  const copy = idx.clone();
  idx.deleteTree("/a/b");
  assert.deepEqual([...idx.paths()].sort(), ["/a", "/a/x", "/z"]);
  assert.equal(copy.size, 5);
  assert.equal(copy.has("/a/b/c"), true);
  idx.deleteTree("/");
  assert.equal(idx.size, 0);
  assert.throws(() => {
    (copy.get("/z") as { mode: number }).mode = 1;
  });
});

test("GNU find engine and Node engine agree on changes and on the updated index", async (t) => {
  if ((await gnuFind()) === undefined) {
    t.skip("GNU find not installed");
    return;
  }
  const sb = await makeSandbox();
  try {
    const r = sb.root;
    await mkdir(path.join(r, "a/b"), { recursive: true });
    await writeFile(path.join(r, "a/b/f"), "f");
    await writeFile(path.join(r, "a/gone"), "g");
    await mkdir(path.join(r, "ign/deep"), { recursive: true });
    await writeFile(path.join(r, "ign/deep/x"), "x");
    await symlink("a/b", path.join(r, "ln"));
    const ignore = IgnoreList.create({ stateDir: "/kaniko", ignorePaths: ["/ign"] });
    const i1 = await FileIndex.fromWalk(r, ignore);
    const i2 = i1.clone();
    await writeFile(path.join(r, "a/b/f"), "changed");
    await rm(path.join(r, "a/gone"));
    await writeFile(path.join(r, "new file\nwith newline"), "n");
    await chmod(path.join(r, "a"), 0o4711);
    await writeFile(path.join(r, "ign/deep/y"), "y");
    const viaFind = await walkChanges(r, i1, { ignore, update: true, engine: "find" });
    const viaNode = await walkChanges(r, i2, { ignore, update: true, engine: "node" });
    assert.deepEqual(viaFind, viaNode);
    assert.ok(viaFind.changed.includes("/new file\nwith newline"));
    assert.deepEqual(viaFind.deleted, ["/a/gone"]);
    assert.deepEqual([...i1.paths()].sort(), [...i2.paths()].sort());
    for (const p of i1.paths()) assert.deepEqual(i1.get(p), i2.get(p), p);
  } finally {
    await sb.cleanup();
  }
});
