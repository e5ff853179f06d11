/**
 * A build marks its state dir as the top of a directory hierarchy (ext4 `chattr +T`, through
 * `kiln-exec --spread`) before it makes its `build-*` directory there, so that ext4 places that directory
 * in a lightly used block group rather than where the previous build's directory was just deleted (on
 * ext4 without a journal, creating inodes there first skips every recently deleted one: seconds for a
 * few thousand files); so is the layer store's extraction dir. Library build of a FROM scratch image to
 * an OCI layout: no registry, no RUN.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { access, readdir, statfs } from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { findHelper } from "../../src/run/index.js";
import { SPREAD_MARKER } from "../../src/run/spread-dirs.js";
import { writeTree } from "../integration/helpers.js";
import { libraryBuild } from "../support/library-build.js";
import { removeDir, tempDir } from "../support/tmp.js";

/** The inode flags `lsattr -d` prints for `dir` ("-------------Te-------"), or "" without lsattr. */
function lsattrFlags(dir: string): string {
  const r = spawnSync("lsattr", ["-d", dir], { encoding: "utf8" });
  return r.status === 0 ? (r.stdout.trim().split(/\s+/)[0] ?? "") : "";
}

describe("the state dir of a build", () => {
  let work: string;
  before(async () => {
    work = await tempDir("state-dir-spread");
    await writeTree(path.join(work, "ctx"), { Dockerfile: "FROM scratch\nCOPY a.txt /a.txt\n", "a.txt": "a\n" });
  });
  after(async () => {
    await removeDir(work);
  });

  it("is marked +T on ext4 before the build dir is made in it", async (t) => {
    if ((await statfs(work)).type !== 0xef53) return t.skip("the test temp dir is not on ext4 here");
    if (findHelper() === undefined) return t.skip("native/kiln-exec is not built");
    const stateDir = path.join(work, "state");
    const { events } = await libraryBuild(
      [
        "--context",
        path.join(work, "ctx"),
        "--no-push",
        "--isolation=chroot", // not in place: no runner is asked for
        "--oci-layout-path",
        path.join(work, "out"),
        "--kaniko-dir",
        stateDir,
        "--layer-store",
        path.join(work, "store"),
      ],
      {
        runner: () => Promise.reject(new Error("this Dockerfile has no RUN")),
        discardDir: async () => {}, // keep the build dir to look at it
      },
    );
    const notSpread = events.filter((e) => e.kind === "debug" && e.message.startsWith("state dir not spread"));
    assert.deepEqual(notSpread, []);
    assert.match(lsattrFlags(stateDir), /T/);
    const builds = (await readdir(stateDir)).filter((n) => n.startsWith("build-"));
    assert.equal(builds.length, 1);
    // The flag is not inherited: the build's own directories stay together.
    assert.doesNotMatch(lsattrFlags(path.join(stateDir, builds[0] as string)), /T/);
    // The layer store's extraction dir is marked too (entries are unpacked there, then renamed).
    assert.match(lsattrFlags(path.join(work, "store", "tmp")), /T/);
    // Both carry the marker that spares the next build the helper (and the store keeps it in tmp/).
    await access(path.join(stateDir, SPREAD_MARKER));
    await access(path.join(work, "store", "tmp", SPREAD_MARKER));
  });
});
