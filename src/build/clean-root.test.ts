import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { IgnoreList } from "../fs/index.js";
import { cleanRoot } from "./clean-root.js";

test("cleanRoot deletes everything except ignored paths and the directories leading to them", async () => {
  const root = await mkdtemp(path.join(tmpdir(), "kiln-clean-"));
  try {
    for (const d of ["kaniko/state", "usr/bin", "var/run/x", "var/lib", "etc", "proc/1", "outside"])
      await mkdir(path.join(root, d), { recursive: true });
    await writeFile(path.join(root, "kaniko/state/f"), "keep");
    await writeFile(path.join(root, "usr/bin/sh"), "");
    await writeFile(path.join(root, "var/lib/db"), "");
    await writeFile(path.join(root, "etc/passwd"), "");
    await writeFile(path.join(root, "outside/secret"), "keep");
    // a symlink is removed as a link, never followed
    await symlink("/outside", path.join(root, "link"));
    const ignore = IgnoreList.create({ stateDir: "/kaniko", systemMounts: true, ignoreVarRun: true });
    await cleanRoot(root, ignore);
    assert.deepEqual((await readdir(root)).sort(), ["etc", "kaniko", "proc", "var"].sort());
    assert.deepEqual(await readdir(path.join(root, "var")), ["run"]);
    assert.deepEqual(await readdir(path.join(root, "etc")), [], "parent of /etc/mtab is kept, emptied");
    // --cleanup prunes: /etc led only to /etc/mtab, which does not exist, so it goes too.
    await cleanRoot(root, ignore, undefined, { pruneEmpty: true });
    assert.deepEqual((await readdir(root)).sort(), ["kaniko", "proc", "var"].sort());
    assert.deepEqual(await readdir(path.join(root, "kaniko/state")), ["f"]);
    assert.deepEqual(await readdir(path.join(root, "proc")), ["1"]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
