/**
 * The overlay snapshot back-end end to end: a step runs through kiln-exec on an overlay over a stage root,
 * the upper dir is translated and merged, and the result must equal running the same step directly on a
 * copy of the root and diffing it with the metadata walk. Needs root and overlay mounts (skipped otherwise).
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdir, readFile, readdir, lstat, readlink, symlink, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { FileIndex } from "../../src/fs/index.js";
import {
  OverlaySnapshotter,
  WalkSnapshotter,
  chooseSnapshotter,
  overlayHelperArgument,
} from "../../src/fs/snapshot/index.js";
import { probeIsolation } from "../../src/run/index.js";
import type { Changes } from "../../src/fs/index.js";
import { tarBytes } from "../support/changes-tar.js";
import { repoRoot, removeDir, tempDir } from "../support/tmp.js";

const HELPER = path.join(repoRoot(), "native", "kiln-exec");

function overlayWorks(dir: string): boolean {
  if (process.getuid?.() !== 0 || !existsSync(HELPER) || !existsSync("/bin/busybox")) return false;
  try {
    execFileSync("mkdir", ["-p", `${dir}/l/bin`, `${dir}/u`, `${dir}/w`]);
    execFileSync("cp", ["/bin/busybox", `${dir}/l/bin/busybox`]);
    execFileSync(HELPER, [
      "--mountns",
      "--overlay",
      `${dir}/l:${dir}/u:${dir}/w`,
      "--root",
      `${dir}/l`,
      "--",
      "/bin/busybox",
      "true",
    ]);
    return true;
  } catch {
    return false;
  }
}

async function makeRoot(root: string): Promise<void> {
  await mkdir(path.join(root, "bin"), { recursive: true });
  execFileSync("cp", ["/bin/busybox", path.join(root, "bin", "busybox")]);
  execFileSync(HELPER, ["--root", root, "--", "/bin/busybox", "--install", "-s", "/bin"]);
  await mkdir(path.join(root, "etc"));
  await writeFile(path.join(root, "etc", "keep"), "keep");
  await writeFile(path.join(root, "etc", "edit"), "old");
  await writeFile(path.join(root, "etc", "gone"), "gone");
  await mkdir(path.join(root, "data", "sub"), { recursive: true });
  await writeFile(path.join(root, "data", "sub", "old1"), "1");
  await writeFile(path.join(root, "data", "old2"), "2");
  await mkdir(path.join(root, "tree", "deep"), { recursive: true });
  await writeFile(path.join(root, "tree", "deep", "x"), "x");
  await symlink("/etc", path.join(root, "link"));
  await writeFile(path.join(root, "becomes-dir"), "f");
  await mkdir(path.join(root, "becomes-file"));
  await writeFile(path.join(root, "becomes-file", "y"), "y");
}

const SCRIPT = [
  "echo new > /etc/edit",
  "rm /etc/gone",
  "rm -rf /data && mkdir -p /data/sub && echo fresh > /data/sub/new",
  "rm -rf /tree",
  "mkdir -p /new/a/b && echo n > /new/a/b/f && ln /new/a/b/f /new/a/hard",
  "rm /becomes-dir && mkdir /becomes-dir && echo in > /becomes-dir/in",
  "rm -rf /becomes-file && echo now-file > /becomes-file",
  "rm /link && ln -s /data /link",
  "chmod 0700 /etc/keep",
].join(" && ");

/** `security.capability` v2 with cap_net_bind_service permitted and effective (what setcap writes). */
const CAP_NET_BIND = "0x0100000200040000000000000000000000000000";

function runStep(root: string, overlay?: string): void {
  const args = ["--mountns", "--root", root, "--cwd", "/"];
  if (overlay !== undefined) args.push("--overlay", overlay);
  execFileSync(HELPER, [...args, "--", "/bin/busybox", "sh", "-c", `export PATH=/bin; ${SCRIPT}`]);
}

async function tree(root: string, dir = ""): Promise<string[]> {
  const out: string[] = [];
  for (const n of (await readdir(path.join(root, dir))).sort()) {
    const rel = `${dir}/${n}`;
    const st = await lstat(path.join(root, rel));
    if (st.isDirectory()) out.push(`${rel}/ ${(st.mode & 0o7777).toString(8)}`, ...(await tree(root, rel)));
    else if (st.isSymbolicLink()) out.push(`${rel} -> ${await readlink(path.join(root, rel))}`);
    else
      out.push(
        `${rel} ${(st.mode & 0o7777).toString(8)} ${st.nlink} ${st.isFile() ? await readFile(path.join(root, rel), "utf8") : "special"}`,
      );
  }
  return out;
}

/** The set of paths a layer of `c` would hide or replace, normalised across back-ends. */
function effect(c: Changes): string[] {
  return [
    ...c.changed.map((p) => `+${p}`),
    ...c.deleted.map((p) => `-${p}`),
    ...c.opaqueDirs.map((p) => `opaque ${p}`),
  ];
}

test("overlay back-end: upper dir becomes the step's changes and merges into the root", async (t) => {
  const dir = await tempDir("kiln-ovl-");
  try {
    if (!overlayWorks(path.join(dir, "probe"))) {
      t.skip("overlay mounts need root, native/kiln-exec and /bin/busybox");
      return;
    }
    const a = path.join(dir, "a");
    const b = path.join(dir, "b");
    await makeRoot(a);
    await cp(a, b, { recursive: true, verbatimSymlinks: true });
    const ia = await FileIndex.fromWalk(a);
    const ib = await FileIndex.fromWalk(b);

    const ovl = new OverlaySnapshotter();
    const dirs = await ovl.beforeRun(a);
    runStep(a, overlayHelperArgument(dirs));
    // `setcap` in the step: on a copied-up file and on a new one (a valid v2 capability: cap_net_bind_service).
    for (const f of ["etc/edit", "data/sub/new"]) {
      execFileSync("setfattr", ["-n", "security.capability", "-v", CAP_NET_BIND, path.join(dirs.upper, f)]);
    }
    const ca = await ovl.afterRun(a, ia);
    runStep(b);
    const cb = await new WalkSnapshotter().afterRun(b, ib);

    assert.deepEqual(await tree(a), await tree(b), "same resulting root");
    assert.ok(!existsSync(`${a}.overlay`), "scratch dirs removed");
    // The index after merging equals a fresh walk.
    const fresh = await FileIndex.fromWalk(a);
    assert.deepEqual([...ia.paths()].sort(), [...fresh.paths()].sort());
    for (const p of fresh.paths()) assert.deepEqual(ia.get(p), fresh.get(p), p);

    const e = effect(ca);
    for (const want of [
      "+/etc/edit",
      "-/etc/gone",
      "-/tree",
      "+/new/a/b/f",
      "+/new/a/hard",
      "+/becomes-file",
      "+/becomes-dir/in",
      "+/link",
      "+/etc/keep",
      "opaque /data",
      "+/data/sub/new",
    ]) {
      assert.ok(e.includes(want), `${want} in ${e.join(" ")}`);
    }
    for (const never of ["+/etc/gone", "+/bin/busybox", "-/tree/deep", "-/tree/deep/x"]) {
      assert.ok(!e.includes(never), `${never} not in ${e.join(" ")}`);
    }
    // The walk agrees on every changed file (it reports deletions per child where overlay says opaque).
    for (const p of cb.changed.filter((x) => !x.startsWith("/bin"))) {
      const st = await lstat(path.join(a, p));
      if (!st.isDirectory()) assert.ok(ca.changed.includes(p), `${p} changed per walk but not per overlay`);
    }
    // Capabilities come read along with the overlay xattrs; the layer tar is the same bytes as when the
    // writer reads them itself.
    assert.deepEqual([...(ca.capabilities?.values.keys() ?? [])].sort(), ["/data/sub/new", "/etc/edit"]);
    assert.ok(ca.capabilities?.checked.has("/new/a/b/f"));
    const known = await tarBytes(a, ca);
    const reread = await tarBytes(a, { ...ca, capabilities: undefined });
    assert.ok(known.equals(reread), "same layer tar with and without the capabilities read by the snapshot");
    assert.equal(known.toString("latin1").split("SCHILY.xattr.security.capability=").length - 1, 2);
    // No overlay xattr leaked into the root.
    const xattrs = execFileSync("getfattr", ["-R", "-h", "-d", "-m", "trusted.overlay", a], { encoding: "utf8" });
    assert.equal(xattrs.trim(), "");
  } finally {
    await removeDir(dir);
  }
});

test("probeIsolation: overlay true for a state dir where overlay mounts work, false where its upper cannot be", async (t) => {
  const dir = await tempDir("kiln-ovl-probe-");
  try {
    if (!overlayWorks(path.join(dir, "manual"))) {
      t.skip("overlay mounts need root, native/kiln-exec and /bin/busybox");
      return;
    }
    const state = path.join(dir, "state");
    assert.equal((await probeIsolation({ scratchDir: state })).overlay, true);
    assert.deepEqual(await readdir(state), [], "probe cleans up");
    // ramfs takes no trusted.* xattrs: the overlay back-end cannot work there, the other mechanisms do.
    const ram = path.join(dir, "ram");
    await mkdir(ram);
    execFileSync("mount", ["-t", "ramfs", "ramfs", ram]);
    try {
      const probe = await probeIsolation({ scratchDir: ram });
      assert.deepEqual([probe.overlay, probe.chroot, probe.mountns], [false, true, true]);
      assert.deepEqual(await readdir(ram), [], "probe cleans up");
    } finally {
      execFileSync("umount", [ram]);
    }
    assert.equal(chooseSnapshotter("full", true).kind, "overlay");
    assert.equal(chooseSnapshotter("time", false).kind, "walk");
  } finally {
    await removeDir(dir);
  }
});
