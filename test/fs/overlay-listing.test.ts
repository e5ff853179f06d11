/**
 * The overlay snapshot with kiln-exec's listing of the upper (`--list-upper`) against the same snapshot
 * from Node's own walk of the upper: the same RUN through the chroot runner on two identical roots must give
 * identical changes, an identical index and an identical layer. Needs root, overlay mounts, a C compiler
 * (a static `setcap` stand-in for the root), native/kiln-exec, /bin/busybox and getfattr/setfattr.
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { FileIndex } from "../../src/fs/index.js";
import { OverlaySnapshotter, mergeOverlayUpper } from "../../src/fs/snapshot/index.js";
import { readUpperListing } from "../../src/fs/snapshot/upper-listing.js";
import { createRunner, probeIsolation } from "../../src/run/index.js";
import type { RunSpec, Runner } from "../../src/run/index.js";
import { testRunSpec } from "../../src/run/testing/run-spec.js";
import { tarBytes } from "../support/changes-tar.js";
import { repoRoot, removeDir, tempDir } from "../support/tmp.js";

const HELPER = path.join(repoRoot(), "native", "kiln-exec");
const WHEN = "2020-01-02 03:04:05";
const MANY = 1150;

/** Sets cap_net_bind_service (v2, permitted + effective) on its arguments, as `setcap` does. */
const SETCAP_C = `#include <sys/xattr.h>
int main(int argc, char **argv) {
  static const char cap[20] = {1, 0, 0, 2, 0, 4};
  for (int i = 1; i < argc; i++)
    if (setxattr(argv[i], "security.capability", cap, sizeof cap, 0) != 0) return 1;
  return 0;
}
`;

const SCRIPT = [
  "set -e",
  "rm /etc/gone",
  "rm -rf /data && mkdir -p /data/sub && echo fresh > /data/sub/new",
  `mkdir /many && i=0 && while [ $i -lt ${MANY} ]; do echo $i > /many/f$i; i=$((i+1)); done`,
  "echo n > /new && ln /new /new-hard && ln -s /new /new-sym && mkfifo /fifo",
  "echo edit > /etc/edit && chmod 0700 /etc/keep",
  "kiln-setcap /new /etc/edit",
  // Fixed times, so that both roots' layers can be compared byte for byte (children before parents).
  `touch -h -d '${WHEN}' /many/* /data/sub/new /new /new-hard /new-sym /fifo /etc/edit /etc/keep`,
  `touch -h -d '${WHEN}' /many /data/sub /data /etc`,
].join("\n");

function usable(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root";
  for (const f of [HELPER, "/bin/busybox", "/usr/bin/getfattr", "/usr/bin/setfattr"])
    if (!existsSync(f)) return `${f} is missing`;
  try {
    execFileSync("cc", ["--version"], { stdio: "ignore" });
  } catch {
    return "no C compiler";
  }
  return undefined;
}

async function makeRoot(root: string, work: string): Promise<void> {
  for (const d of ["bin", "etc", "data/sub"]) await mkdir(path.join(root, d), { recursive: true });
  execFileSync("cp", ["/bin/busybox", path.join(root, "bin", "busybox")]);
  execFileSync(HELPER, ["--root", root, "--", "/bin/busybox", "--install", "-s", "/bin"]);
  await writeFile(path.join(work, "setcap.c"), SETCAP_C);
  execFileSync("cc", ["-static", "-O1", "-o", path.join(root, "bin", "kiln-setcap"), path.join(work, "setcap.c")]);
  for (const [f, text] of [
    ["etc/keep", "keep"],
    ["etc/edit", "old"],
    ["etc/gone", "gone"],
    ["data/sub/old1", "1"],
    ["data/old2", "2"],
  ] as const)
    await writeFile(path.join(root, f), text);
}

async function runStep(runner: Runner, root: string, overlay: RunSpec["overlay"]): Promise<void> {
  const out: Buffer[] = [];
  const spec = testRunSpec({ root, argv: ["sh", "-c", SCRIPT], overlay });
  const r = await runner.run(spec, { stdout: (c) => out.push(c), stderr: (c) => out.push(c) });
  assert.equal(r.exitCode, 0, Buffer.concat(out).toString());
  assert.equal(Buffer.concat(out).toString(), "", "the listing says nothing when it works");
}

test("overlay snapshot: kiln-exec's listing of the upper gives what Node's walk of it gives", async (t) => {
  const skip = usable();
  if (skip !== undefined) {
    t.skip(skip);
    return;
  }
  const dir = await tempDir("kiln-ovl-list-");
  try {
    const a = path.join(dir, "a");
    const b = path.join(dir, "b");
    await makeRoot(a, dir);
    execFileSync("cp", ["-a", a, b]);
    const probe = await probeIsolation({ helperPath: HELPER, scratchDir: dir });
    if (!probe.overlay) {
      t.skip("overlay mounts do not work here");
      return;
    }
    const runner = createRunner("chroot", probe, { helperPath: HELPER });
    const snap = new OverlaySnapshotter();
    const ia = await FileIndex.fromWalk(a);
    const ib = await FileIndex.fromWalk(b);

    // a: with the listing.
    const da = await snap.beforeRun(a);
    assert.ok(da.listing !== undefined);
    await runStep(runner, a, da);
    const listed = readUpperListing(da.listing);
    assert.ok(listed !== undefined && listed.entries.length > MANY, "kiln-exec listed the upper");
    const ca = await mergeOverlayUpper(a, da.upper, ia, { listing: da.listing });
    await snap.discard(a);

    // b: without it (the runner passes no --list-upper; the merge walks the upper).
    const db = await snap.beforeRun(b);
    await runStep(runner, b, { ...db, listing: undefined });
    assert.ok(db.listing !== undefined && !existsSync(db.listing));
    const cb = await mergeOverlayUpper(b, db.upper, ib, { listing: db.listing });
    await snap.discard(b);

    assert.deepEqual(ca, cb, "same changes");
    assert.ok(ca.changed.length > MANY);
    assert.deepEqual(ca.deleted, ["/etc/gone"]);
    assert.deepEqual(ca.opaqueDirs, ["/data"]);
    assert.deepEqual([...(ca.capabilities?.values.keys() ?? [])].sort(), ["/etc/edit", "/new", "/new-hard"]);

    // Each index equals a fresh walk of its root; both agree but for inode numbers and change times.
    for (const [root, index] of [
      [a, ia],
      [b, ib],
    ] as const) {
      const fresh = await FileIndex.fromWalk(root);
      assert.deepEqual([...index.paths()].sort(), [...fresh.paths()].sort());
      for (const p of fresh.paths()) assert.deepEqual(index.get(p), fresh.get(p), p);
    }
    assert.deepEqual([...ia.paths()].sort(), [...ib.paths()].sort());
    for (const p of ia.paths()) {
      const { ino: _ia, ctimeNs: _ca, ...ea } = ia.get(p) ?? {};
      const { ino: _ib, ctimeNs: _cb, ...eb } = ib.get(p) ?? {};
      assert.deepEqual(ea, eb, p);
    }

    const la = await tarBytes(a, ca);
    assert.ok(la.equals(await tarBytes(b, cb)), "same layer bytes");
    assert.equal(la.toString("latin1").split("SCHILY.xattr.security.capability=").length - 1, 2);
  } finally {
    await removeDir(dir);
  }
});
