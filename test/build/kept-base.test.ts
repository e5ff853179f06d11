/**
 * A base layer the build extracts is downloaded once (build/kept-bases.ts, image/layer/kept-copy.ts): the
 * outputs that read its blob again (an OCI layout, an image tarball, a push to another registry, which
 * cannot mount it) read the copy the build kept while extracting it. Counted at a fault proxy in front
 * of the real registry that holds the base; the outputs are read by skopeo and umoci. The push to another
 * registry also takes the kept base layer ahead, during the build: a later step (an ADD of a URL the
 * second registry's proxy serves) is held until that layer's upload has arrived, shown without timing;
 * with pushing ahead off, only the proxy's time limit releases it.
 */
import * as assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import type { BuildOptions } from "../../src/index.js";
import { sh, skopeoInspect, writeTree } from "../integration/helpers.js";
import { startFaultProxy, type FaultProxy } from "../support/fault-proxy.js";
import { libraryBuild } from "../support/library-build.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { useSuiteFixture } from "../support/suite-fixture.js";

describe("kept base layers: a base layer the build extracts is downloaded once", () => {
  const f = useSuiteFixture("kept-base", { proxy: true });
  let other: TestRegistry | undefined;
  let otherProxy: FaultProxy | undefined;
  before(async () => {
    other = await startRegistry();
    otherProxy = await startFaultProxy({ target: other.host });
  });
  after(async () => {
    await otherProxy?.stop();
    await other?.stop();
  });

  /** The busybox base's layer digests, read with skopeo. */
  const baseLayers = async (): Promise<string[]> =>
    (await skopeoInspect(`${f.reg.host}/busybox:latest`)).Layers as string[];
  /** GETs of `digest`'s blob the base registry's proxy saw. */
  const blobGets = (digest: string): number =>
    f.proxy.requests.filter((q) => q.method === "GET" && q.path.endsWith(`/blobs/${digest}`)).length;

  test("an OCI layout and a tarball take the extracted base layer from the build's copy", async () => {
    const ctx = path.join(f.work, "outputs");
    await writeTree(ctx, { Dockerfile: `FROM ${f.proxy.host}/busybox:latest\nRUN echo kept > /kept.txt\n` });
    const layout = path.join(f.work, "layout");
    const tarball = path.join(f.work, "image.tar");
    f.proxy.requests.splice(0);
    await libraryBuild([
      "--context",
      ctx,
      "--no-push",
      "--oci-layout-path",
      layout,
      "--tar-path",
      tarball,
      "--insecure-pull",
      "--kaniko-dir",
      path.join(f.work, "state-outputs"),
    ]);
    const [base] = await baseLayers();
    assert.ok(base !== undefined);
    const list = f.proxy.requests.map((q) => `${q.method} ${q.path}`).join("\n");
    assert.equal(blobGets(base), 1, list);
    // The layout's copy of the base blob is whole (its sha256 is its name) ...
    const blob = await readFile(path.join(layout, "blobs", "sha256", base.slice("sha256:".length)));
    assert.equal(`sha256:${createHash("sha256").update(blob).digest("hex")}`, base);
    // ... and independent tools read both outputs: umoci unpacks the layout (copied by skopeo to name it),
    // skopeo copies the tarball.
    const named = path.join(f.work, "named");
    await sh("skopeo", ["copy", `oci:${layout}`, `oci:${named}:img`]);
    await sh("umoci", ["unpack", "--image", `${named}:img`, path.join(f.work, "bundle")]);
    assert.equal(await readFile(path.join(f.work, "bundle", "rootfs", "kept.txt"), "utf8"), "kept\n");
    assert.ok(await readFile(path.join(f.work, "bundle", "rootfs", "bin", "busybox")));
    await sh("skopeo", ["copy", `docker-archive:${tarball}`, `oci:${path.join(f.work, "from-tar")}:img`]);
  });

  /** Builds FROM the base registry and pushes to the other one, a later step held until the base layer's upload. */
  const pushElsewhere = async (
    repo: string,
    options: Partial<BuildOptions>,
    holdMs: number,
  ): Promise<{ released: string | undefined; base: string }> => {
    const to = otherProxy;
    if (to === undefined) throw new Error("no second registry");
    const [base] = await baseLayers();
    if (base === undefined) throw new Error("busybox has no layer");
    const ctx = path.join(f.work, repo);
    await writeTree(ctx, {
      Dockerfile: `FROM ${f.proxy.host}/busybox:latest\nRUN echo ${repo} > /r.txt\nADD http://${to.host}/v2/_catalog /catalog.json\n`,
    });
    f.proxy.requests.splice(0);
    to.injected.splice(0);
    to.setRules([
      {
        method: "GET",
        path: /^\/v2\/_catalog/,
        fault: "hold",
        until: { method: "PUT", path: new RegExp(`^/v2/${repo}/blobs/uploads/.+digest=${encodeURIComponent(base)}`) },
        untilSeen: true, // pushed ahead, the base layer may go up even before the RUN ends
        maxMs: holdMs,
        times: 1,
      },
    ]);
    try {
      await libraryBuild(
        [
          "--context",
          ctx,
          "--destination",
          `${to.host}/${repo}:latest`,
          "--insecure",
          "--insecure-pull",
          "--kaniko-dir",
          path.join(f.work, `state-${repo}`),
        ],
        { options },
      );
    } finally {
      to.setRules([]);
    }
    return { released: to.injected.find((i) => i.path.startsWith("/v2/_catalog"))?.released, base };
  };

  test("a push to another registry uploads the base layer from the build's copy, during the build", async () => {
    const { released, base } = await pushElsewhere("kb-ahead", {}, 20_000);
    const list = f.proxy.requests.map((q) => `${q.method} ${q.path}`).join("\n");
    assert.equal(blobGets(base), 1, list);
    assert.ok(released === "until" || released === "seen", `released by ${released}`);
    const pushed = await skopeoInspect(`${other?.host ?? ""}/kb-ahead:latest`);
    assert.equal((pushed.Layers as string[])[0], base);
    await sh("skopeo", [
      "copy",
      "--src-tls-verify=false",
      `docker://${other?.host ?? ""}/kb-ahead:latest`,
      `dir:${path.join(f.work, "kb-ahead-copy")}`,
    ]);
  });

  test("without pushing ahead the base layer still comes from the copy, after the build", async () => {
    const { released, base } = await pushElsewhere("kb-end", { pushAhead: false }, 2000);
    assert.equal(blobGets(base), 1);
    assert.equal(released, "timeout");
    const pushed = await skopeoInspect(`${other?.host ?? ""}/kb-end:latest`);
    assert.equal((pushed.Layers as string[])[0], base);
  });
});
