/**
 * The final stage's layers are pushed while the build still runs (build/push-ahead.ts): a layer a step
 * produced reaches the registry before a later step ends, and the push at the end uploads it no second
 * time. Shown without timing through a fault proxy in front of a real registry: the later step (an ADD
 * of a URL served by the proxy) is held until the layer's upload arrives, and that upload's session is
 * held until the ADD's request arrives, so each can only be released by the other. With the push ahead
 * switched off (`pushAhead: false`), the ADD's request is released only by the proxy's time limit.
 * skopeo reads the pushed image as the independent check.
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { describe, test } from "node:test";
import type { BuildEvent, BuildOptions } from "../../src/index.js";
import { writeTree } from "../integration/helpers.js";
import { libraryBuild } from "../support/library-build.js";
import { useSuiteFixture } from "../support/suite-fixture.js";

describe("push ahead: the final stage's layers go to the registry during the build", () => {
  const f = useSuiteFixture("push-ahead", { proxy: true });

  /** Builds a COPY then an ADD of the proxy's catalog, pushing to `<proxy>/<repo>:latest`. */
  const buildWithHolds = async (
    repo: string,
    options: Partial<BuildOptions>,
    holdMs: number,
  ): Promise<{ digest: string; released: Record<string, string | undefined>; events: BuildEvent[] }> => {
    const ctx = path.join(f.work, repo);
    await writeTree(ctx, {
      Dockerfile: `FROM ${f.proxy.host}/busybox:latest\nCOPY a.txt /a.txt\nADD http://${f.proxy.host}/v2/_catalog /catalog.json\n`,
      "a.txt": `layer of ${repo}\n`,
    });
    const uploadSession = new RegExp(`^/v2/${repo}/blobs/uploads/$`);
    f.proxy.injected.splice(0);
    f.proxy.requests.splice(0);
    f.proxy.setRules([
      // The COPY layer's upload session (the base layer is mounted, with a query) waits for the ADD ...
      {
        method: "POST",
        path: uploadSession,
        fault: "hold",
        until: { method: "GET", path: /^\/v2\/_catalog/ },
        // Should the ADD's request come first after all, the session goes on after this and its upload
        // still releases the ADD (which waits longer).
        maxMs: 2000,
        times: 1,
      },
      // ... and the ADD waits for that layer's upload.
      {
        method: "GET",
        path: /^\/v2\/_catalog/,
        fault: "hold",
        until: { method: "PUT", path: new RegExp(`^/v2/${repo}/blobs/uploads/.+digest=`) },
        maxMs: holdMs,
        times: 1,
      },
    ]);
    try {
      const flags = [
        "--context",
        ctx,
        "--destination",
        `${f.proxy.host}/${repo}:latest`,
        "--insecure",
        "--insecure-pull",
        // No check's upload session: the only plain POST to the repository is a layer's.
        "--skip-push-permission-check",
        "--kaniko-dir",
        path.join(f.work, `state-${repo}`),
      ];
      const out = await libraryBuild(flags, { options });
      const released: Record<string, string | undefined> = {};
      for (const i of f.proxy.injected) released[`${i.method} ${i.path.replace(/\?.*/, "")}`] = i.released;
      return { digest: out.digest, released, events: out.events };
    } finally {
      f.proxy.setRules([]);
    }
  };

  test("a step's layer is uploaded before the next step ends, once, and the image is complete", async () => {
    const { digest, released, events } = await buildWithHolds("pa-on", {}, 20_000);
    const list = f.proxy.requests.map((q) => `${q.method} ${q.path}`).join("\n");
    assert.equal(released["GET /v2/_catalog"], "until", list);
    // The COPY's layer: uploaded once (its push at the end waited for the one started during the build).
    const copyLayer = events.find((e) => e.kind === "layer-created")?.layer.digest;
    assert.ok(copyLayer !== undefined);
    const uploads = f.proxy.requests.filter(
      (q) =>
        q.method === "PUT" &&
        q.path.includes("/pa-on/blobs/uploads/") &&
        q.path.includes(encodeURIComponent(copyLayer)),
    );
    assert.equal(uploads.length, 1, list);
    const inspected = JSON.parse(
      execFileSync("skopeo", ["inspect", "--tls-verify=false", `docker://${f.reg.host}/pa-on:latest`], {
        encoding: "utf8",
      }),
    ) as { Digest: string; Layers: string[] };
    assert.equal(inspected.Digest, digest);
    assert.ok(inspected.Layers.includes(copyLayer));
    execFileSync(
      "skopeo",
      [
        "copy",
        "--src-tls-verify=false",
        `docker://${f.reg.host}/pa-on:latest`,
        `dir:${path.join(f.work, "pa-on-copy")}`,
      ],
      {
        stdio: "pipe",
      },
    );
  });

  test("a build that fails before any step waited for the push check does not wait for the check", async () => {
    const ctx = path.join(f.work, "pa-fail");
    // Nothing executes (ENV is metadata): the final check refuses the secret stored in the config.
    await writeTree(ctx, { Dockerfile: `FROM ${f.proxy.host}/busybox:latest\nARG TOKEN\nENV LEAK=$TOKEN\n` });
    f.proxy.injected.splice(0);
    // The check's upload session is held until its client goes away (or 20 s pass).
    f.proxy.setRules([
      { method: "POST", path: /\/pa-fail\/blobs\/uploads\/$/, fault: "hold", until: { path: /^$/ }, maxMs: 20_000 },
    ]);
    try {
      const flags = [
        "--context",
        ctx,
        "--destination",
        `${f.proxy.host}/pa-fail:latest`,
        "--build-arg",
        "TOKEN=s3cr3t-t0ken-value",
        "--secret-build-arg",
        "TOKEN",
        "--insecure",
        "--insecure-pull",
        "--kaniko-dir",
        path.join(f.work, "state-pa-fail"),
      ];
      await assert.rejects(
        libraryBuild(flags),
        (e: unknown) => (e as { code?: string }).code === "SECRET_BUILD_ARG_STORED",
      );
      // The build stopped the check: its session request was abandoned, not released by the time limit.
      assert.deepEqual(
        f.proxy.injected.map((i) => `${i.method} ${i.released}`),
        ["POST abandoned"],
      );
    } finally {
      f.proxy.setRules([]);
    }
  });

  test("switched off, every blob is pushed after the build: the held step is released only by the time limit", async () => {
    const { released } = await buildWithHolds("pa-off", { pushAhead: false }, 2000);
    assert.equal(released["GET /v2/_catalog"], "timeout");
  });
});
