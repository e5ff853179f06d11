/**
 * `--cleanup` (BuildOptions.cleanup) promises a root as found when the build ends, so `build` deletes
 * its working directory itself before returning, even when the caller hands it a `discardDir` (the
 * CLI's detached removal). Without `--cleanup` the directory goes to `discardDir`. Library builds of a
 * FROM scratch image written to an OCI layout: no registry, no RUN.
 */
import * as assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { writeTree } from "../integration/helpers.js";
import { libraryBuild } from "../support/library-build.js";
import { removeDir, tempDir } from "../support/tmp.js";

/** Builds with kaniko flags; what `discardDir` was handed and the build dirs left in the state dir. */
async function buildOnce(
  work: string,
  name: string,
  flags: string[],
): Promise<{ discarded: string[]; left: string[] }> {
  const stateDir = path.join(work, `state-${name}`);
  const discarded: string[] = [];
  await libraryBuild(
    [
      "--context",
      path.join(work, "ctx"),
      "--no-push",
      "--isolation=chroot", // not in place: no runner is asked for
      "--oci-layout-path",
      path.join(work, `out-${name}`),
      "--kaniko-dir",
      stateDir,
      ...flags,
    ],
    {
      runner: () => Promise.reject(new Error("this Dockerfile has no RUN")),
      discardDir: async (dir) => {
        discarded.push(dir);
      },
    },
  );
  const left = (await readdir(stateDir)).filter((n) => n.startsWith("build-")).map((n) => path.join(stateDir, n));
  return { discarded, left };
}

describe("the build dir with --cleanup", () => {
  let work: string;
  before(async () => {
    work = await tempDir("cleanup-discard");
    await writeTree(path.join(work, "ctx"), { Dockerfile: "FROM scratch\nCOPY a.txt /a.txt\n", "a.txt": "a\n" });
  });
  after(async () => {
    await removeDir(work);
  });

  it("goes to discardDir without --cleanup", async () => {
    const { discarded, left } = await buildOnce(work, "plain", []);
    assert.equal(discarded.length, 1);
    assert.deepEqual(left, discarded, "the recording discardDir leaves the build dir in place");
  });

  it("is deleted by build itself with --cleanup, whatever discardDir says", async () => {
    const { discarded, left } = await buildOnce(work, "cleanup", ["--cleanup"]);
    assert.deepEqual(discarded, []);
    assert.deepEqual(left, []);
  });
});
