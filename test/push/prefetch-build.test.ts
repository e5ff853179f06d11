/**
 * The build reads each destination tag at start (RegistryClient.prefetchPushState) and its push
 * skips the existence checks of the blobs that tag holds. A layer deleted from the repository
 * between two builds: the registry refuses the manifest, the push checks every blob, restores the
 * lost one and the image pulls completely (skopeo). A dry run reads no tag and keeps no upload session.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { runKiln } from "../support/kiln-cli.js";
import { writeTree } from "../integration/helpers.js";
import type { FaultProxy } from "../support/fault-proxy.js";
import type { TestRegistry } from "../support/registry.js";
import { useSuiteFixture } from "../support/suite-fixture.js";

type Req = FaultProxy["requests"][number];

function count(reqs: readonly Req[], method: string, re: RegExp): number {
  return reqs.filter((q) => q.method === method && re.test(q.path)).length;
}

async function manifestLayers(reg: TestRegistry, repo: string, tag: string): Promise<string[]> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, {
    headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
  });
  assert.equal(res.status, 200);
  return ((await res.json()) as { layers: { digest: string }[] }).layers.map((l) => l.digest);
}

describe("build push with the destination tag prefetched", () => {
  const f = useSuiteFixture("prefetch-build", { proxy: true });

  test("a base layer deleted from the destination repository between builds is restored by the push", async () => {
    const ctx = path.join(f.work, "ctx");
    await writeTree(ctx, { Dockerfile: `FROM ${f.proxy.host}/busybox:latest\nRUN echo built > /built\n` });
    const args = [
      "build",
      "--context",
      ctx,
      "--destination",
      `${f.proxy.host}/gc-app:latest`,
      "--destination",
      `${f.proxy.host}/gc-app:second`,
      "--insecure",
      "--insecure-pull",
      "--kaniko-dir",
      path.join(f.work, "state"),
    ];
    const first = await runKiln(args);
    assert.equal(first.code, 0, first.stderr);
    const [baseLayer] = await manifestLayers(f.reg, "gc-app", "latest");
    assert.ok(baseLayer);

    // Without deletion, the second build checks no blob the tags hold: only its new RUN layer and config exist anew.
    f.proxy.requests.splice(0);
    const again = await runKiln(args);
    assert.equal(again.code, 0, again.stderr);
    let list = f.proxy.requests.map((q) => `${q.method} ${q.path}`).join("\n");
    assert.equal(count(f.proxy.requests, "GET", /^\/v2\/gc-app\/manifests\/latest$/), 1, list);
    assert.equal(count(f.proxy.requests, "GET", /^\/v2\/gc-app\/manifests\/second$/), 1, list);
    assert.equal(count(f.proxy.requests, "HEAD", new RegExp(`/gc-app/blobs/${baseLayer}`)), 0, list);
    assert.equal(count(f.proxy.requests, "PUT", /^\/v2\/gc-app\/manifests\//), 2, list);

    const del = await fetch(`${f.reg.url}/v2/gc-app/blobs/${baseLayer}`, { method: "DELETE" });
    assert.equal(del.status, 202);
    f.proxy.requests.splice(0);
    const r = await runKiln(args);
    assert.equal(r.code, 0, r.stderr);
    list = f.proxy.requests.map((q) => `${q.method} ${q.path}`).join("\n");
    // The lost layer was checked (404) and restored (mounted from busybox or uploaded).
    assert.ok(count(f.proxy.requests, "HEAD", new RegExp(`/gc-app/blobs/${baseLayer}`)) >= 1, list);
    for (const tag of ["latest", "second"]) {
      execFileSync(
        "skopeo",
        ["copy", "--src-tls-verify=false", `docker://${f.reg.host}/gc-app:${tag}`, `dir:${path.join(f.work, tag)}`],
        { stdio: "pipe" },
      );
    }
    const head = await fetch(`${f.reg.url}/v2/gc-app/blobs/${baseLayer}`, { method: "HEAD" });
    assert.equal(head.status, 200);

    // A dry run pushes nothing: it reads no tag and cancels the permission check's upload session.
    f.proxy.requests.splice(0);
    const dry = await runKiln([...args, "--dryrun"]);
    assert.equal(dry.code, 0, dry.stderr);
    list = f.proxy.requests.map((q) => `${q.method} ${q.path}`).join("\n");
    assert.equal(count(f.proxy.requests, "GET", /^\/v2\/gc-app\/manifests\//), 0, list);
    assert.equal(count(f.proxy.requests, "POST", /^\/v2\/gc-app\/blobs\/uploads\/$/), 2, list);
    assert.equal(count(f.proxy.requests, "DELETE", /^\/v2\/gc-app\/blobs\/uploads\//), 2, list);
  });
});
