/**
 * The isolation probe runs only when its answer is needed: a build whose RUNs are all cache hits (or that
 * has no RUN, outside a container) never creates the runner, so never probes and emits no isolation
 * event; `--isolation=in-place` still refuses outside a container. Where the in-place decision does need
 * the probe (in a container, or `--isolation=in-place`), the cache is read while it runs. Library builds
 * against the local busybox registry, with a `runner` that counts its calls and probes like the CLI does.
 */
import * as assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as path from "node:path";
import { createRunner, hostDetectionFs, isInContainer, probeIsolation, type Runner } from "../../src/run/index.js";
import { writeTree } from "../integration/helpers.js";
import { startBusyboxRegistry } from "../support/busybox-registry.js";
import { startFaultProxy } from "../support/fault-proxy.js";
import { libraryBuild, type LibraryBuildOutcome } from "../support/library-build.js";
import type { TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";

const skip = process.getuid?.() !== 0 ? "RUN needs root here" : false;

const buildWith = (args: string[], runner?: () => Promise<Runner>): Promise<LibraryBuildOutcome> =>
  libraryBuild(args, runner ? { runner } : {});

describe("isolation probe laziness", { skip }, () => {
  let reg: TestRegistry;
  let base: string;
  let work: string;
  before(async () => {
    ({ reg, base } = await startBusyboxRegistry());
    work = await tempDir("probe-lazy");
  });
  after(async () => {
    await reg?.stop();
    if (work) await removeDir(work);
  });

  const common = (ctx: string): string[] => [
    "--context",
    ctx,
    "--no-push",
    "--insecure",
    "--insecure-pull",
    "--reproducible",
    "--kaniko-dir",
    path.join(work, "state"),
  ];

  it("a fully cached rebuild (registry cache) never creates the runner: no probe, no isolation event", async () => {
    const ctx = path.join(work, "cached");
    await writeTree(ctx, {
      Dockerfile: `FROM ${base}\nRUN echo built > /built\nCOPY f /f\nRUN cat /built /f > /both\n`,
      f: "file\n",
    });
    const args = [
      ...common(ctx),
      "--isolation=chroot",
      "--cache=true",
      `--cache-repo=${reg.host}/probe-lazy/cache`,
      "--oci-layout-path",
    ];
    const first = await buildWith([...args, path.join(work, "cached-1")]);
    assert.equal(first.runnerCalls, 1, "the first build runs its RUNs");
    assert.equal(first.events.filter((e) => e.kind === "isolation").length, 1);
    const second = await buildWith([...args, path.join(work, "cached-2")]);
    assert.equal(second.digest, first.digest);
    assert.equal(second.runnerCalls, 0, "every RUN is a cache hit: the probe never runs");
    assert.equal(second.events.filter((e) => e.kind === "isolation").length, 0);
  });

  it("where the in-place decision waits for the probe, the cache records are read meanwhile", async () => {
    // Through a proxy that records requests: the runner (the probe) answers only once the build has asked
    // the registry for its stage's chain record, or after 10 s. Before the fix the records were asked for
    // only after the in-place decision, so the probe's wait ran in series with them.
    const proxy = await startFaultProxy({ target: reg.host });
    try {
      const ctx = path.join(work, "cache-during-probe");
      await writeTree(ctx, { Dockerfile: `FROM ${proxy.host}/busybox:latest\nRUN echo built > /built\n` });
      const args = [
        ...common(ctx),
        "--cache=true",
        `--cache-repo=${proxy.host}/probe-during/cache`,
        "--oci-layout-path",
      ];
      const first = await buildWith([...args, path.join(work, "during-1"), "--isolation=chroot"]);
      const chainReads = (): number =>
        proxy.requests.filter((r) => r.method === "GET" && /\/probe-during\/cache\/manifests\/chain-/.test(r.path))
          .length;
      const before = chainReads();
      let readDuringProbe = false;
      const gatedRunner = async (): Promise<Runner> => {
        const deadline = Date.now() + 10_000;
        while (chainReads() === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
        readDuringProbe = chainReads() > before;
        const probe = await probeIsolation({ scratchDir: path.join(work, "state") });
        return createRunner("chroot", probe);
      };
      const second = await buildWith([...args, path.join(work, "during-2"), "--isolation=in-place"], gatedRunner);
      assert.equal(second.runnerCalls, 1, "--isolation=in-place asks for the probe before building");
      assert.ok(readDuringProbe, "the stage's chain record was read while the probe was running");
      assert.equal(second.digest, first.digest, "a full cache hit: the same image");
    } finally {
      await proxy.stop();
    }
  });

  it("a build without RUN probes only where the in-place decision needs it (in a container)", async () => {
    const ctx = path.join(work, "no-run");
    await writeTree(ctx, { Dockerfile: `FROM ${base}\nCOPY f /f\nENV A=b\n`, f: "file\n" });
    const r = await buildWith([...common(ctx), "--oci-layout-path", path.join(work, "no-run-out")]);
    assert.equal(r.runnerCalls, isInContainer(hostDetectionFs) ? 1 : 0);
    const chroot = await buildWith([
      ...common(ctx),
      "--isolation=chroot",
      "--oci-layout-path",
      path.join(work, "no-run-out-2"),
    ]);
    assert.equal(chroot.runnerCalls, 0, "--isolation=chroot without RUN: never probed");
    assert.equal(chroot.digest, r.digest);
  });

  it("--isolation=in-place still refuses outside a container", async () => {
    const ctx = path.join(work, "in-place");
    await writeTree(ctx, { Dockerfile: `FROM ${base}\nRUN true\n` });
    const outside = async (): Promise<Runner> => {
      const probe = await probeIsolation({ scratchDir: path.join(work, "state") });
      return createRunner("in-place", { ...probe, inContainer: false });
    };
    await assert.rejects(
      buildWith([...common(ctx), "--isolation=in-place", "--oci-layout-path", path.join(work, "ip")], outside),
      { code: "IN_PLACE_OUTSIDE_CONTAINER" },
    );
  });
});
