import { lstat, mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as assert from "node:assert/strict";
import { MountTargets, canonicalContainerPath, sameDirectory } from "./mount-targets.js";

describe("mount targets", () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), "kiln-mt-"));
    await mkdir(path.join(root, "etc"));
    await mkdir(path.join(root, "run"));
    await symlink("/run/systemd/resolve/stub-resolv.conf", path.join(root, "etc", "resolv.conf"));
    await symlink("../../../../..", path.join(root, "etc", "up"));
    await symlink("loop2", path.join(root, "loop1"));
    await symlink("loop1", path.join(root, "loop2"));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("resolves symlinks as seen from inside the root and never escapes it", async () => {
    assert.equal(await canonicalContainerPath(root, "/etc/resolv.conf"), "/run/systemd/resolve/stub-resolv.conf");
    assert.equal(await canonicalContainerPath(root, "/etc/up/tmp/x"), "/tmp/x");
    assert.equal(await canonicalContainerPath(root, "../../a/./b/../c"), "/a/c");
    await assert.rejects(canonicalContainerPath(root, "/loop1/x"), /too many symlinks/);
  });

  it("creates missing targets through symlinks and removes only what it created", async () => {
    await writeFile(path.join(root, "etc", "hosts"), "pre-existing");
    const t = new MountTargets(root);
    assert.equal(await t.ensure("/etc/resolv.conf", "file"), "/run/systemd/resolve/stub-resolv.conf");
    assert.equal(await t.ensure("/etc/hosts", "file"), "/etc/hosts");
    assert.equal(await t.ensure("/proc", "dir"), "/proc");
    assert.deepEqual(
      t.created.map((p) => path.relative(root, p)),
      ["run/systemd", "run/systemd/resolve", "run/systemd/resolve/stub-resolv.conf", "proc"],
    );
    assert.ok((await lstat(path.join(root, "run/systemd/resolve/stub-resolv.conf"))).isFile());
    assert.deepEqual(await t.cleanup(), []);
    await assert.rejects(lstat(path.join(root, "run/systemd")), { code: "ENOENT" });
    await assert.rejects(lstat(path.join(root, "proc")), { code: "ENOENT" });
    assert.ok((await lstat(path.join(root, "etc/hosts"))).isFile());
    assert.ok((await lstat(path.join(root, "etc/resolv.conf"))).isSymbolicLink());
  });

  it("keeps a created directory the command filled", async () => {
    const t = new MountTargets(root);
    await t.ensure("/cache/sub", "dir");
    await writeFile(path.join(root, "cache", "output"), "made by RUN");
    assert.deepEqual(await t.cleanup(), [path.join(root, "cache")]);
    assert.ok((await lstat(path.join(root, "cache", "output"))).isFile());
  });

  it("sameDirectory: the same real directory, one reached through a symlink, a moved one, a missing one", async () => {
    await mkdir(path.join(root, "sd/a"), { recursive: true });
    const st = await lstat(path.join(root, "sd/a"), { bigint: true });
    const was = { dev: st.dev, ino: st.ino };
    assert.equal(await sameDirectory(root, path.join(root, "sd/a"), was), "same");
    // The command moves the directory away and puts a symlink to it (or anywhere) in its place.
    await rename(path.join(root, "sd/a"), path.join(root, "sd/b"));
    await symlink("b", path.join(root, "sd/a"));
    assert.equal(await sameDirectory(root, path.join(root, "sd/a"), was), "changed", "a symlink, even to itself");
    await rm(path.join(root, "sd/a"));
    await mkdir(path.join(root, "sd/a"));
    assert.equal(await sameDirectory(root, path.join(root, "sd/a"), was), "changed", "another directory");
    assert.equal(await sameDirectory(root, path.join(root, "sd/gone"), was), "missing");
    assert.equal(await sameDirectory(root, path.join(root, "../outside"), was), "changed", "outside the root");
  });

  it("refuses a target whose parent is a file", async () => {
    await writeFile(path.join(root, "afile"), "");
    await assert.rejects(new MountTargets(root).ensure("/afile/x", "dir"), { code: "RUN_MOUNT_TARGET" });
  });
});
