/**
 * Round trips of a fully cached rebuild (issue #8), counted by a proxy in front of the real registry:
 * a regression that re-adds a request (a second base manifest GET, a read per step position instead
 * of the stage's chain record, per-key probes after it, a layer download, a cache write on a full
 * hit) fails here, without timing anything.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { runKiln, type RunKilnResult } from "../support/kiln-cli.js";
import { repoRoot } from "../support/tmp.js";
import { writeTree } from "../integration/helpers.js";
import type { FaultProxy } from "../support/fault-proxy.js";
import { useSuiteFixture } from "../support/suite-fixture.js";

type Req = FaultProxy["requests"][number];

function hits(r: RunKilnResult): number {
  return (r.stderr.match(/Using caching version of cmd/g) ?? []).length;
}

function count(reqs: readonly Req[], method: string, re: RegExp): number {
  return reqs.filter((q) => q.method === method && re.test(q.path)).length;
}

describe("cached rebuild: registry round trips", () => {
  const f = useSuiteFixture("cache-requests", { proxy: true });
  /** Builds `ctx` without cache and pushes it through the proxy to `<name>:latest` (own state dir). */
  const buildAndPush = (ctx: string, name: string): Promise<RunKilnResult> =>
    runKiln([
      "build",
      "--context",
      ctx,
      "--destination",
      `${f.proxy.host}/${name}:latest`,
      "--insecure",
      "--insecure-pull",
      "--kaniko-dir",
      path.join(f.work, `state-${name}`),
    ]);

  test("a fully cached rebuild of steps-20 reads the stage's chain record once, downloads no layer and writes nothing", async () => {
    const ctx = path.join(f.work, "steps-20");
    await writeTree(ctx, {
      Dockerfile: await readFile(path.join(repoRoot(), "bench", "workloads", "steps-20", "Dockerfile"), "utf8"),
    });
    const args = [
      "build",
      "--context",
      ctx,
      "--build-arg",
      `BASE=${f.proxy.host}/busybox:latest`,
      "--destination",
      `${f.proxy.host}/app:latest`,
      "--insecure",
      "--insecure-pull",
      "--cache=true",
      `--cache-repo=${f.proxy.host}/app/cache`,
      "--kaniko-dir",
      path.join(f.work, "state"),
    ];
    const first = await runKiln(args);
    assert.equal(first.code, 0, first.stderr);
    // The first build finds no chain, reads every position, and writes the stage's chain record.
    const firstReqs = f.proxy.requests.splice(0);
    const firstList = firstReqs.map((q) => `${q.method} ${q.path}`).join("\n");
    assert.equal(count(firstReqs, "GET", /\/app\/cache\/manifests\/chain-[0-9a-f]{64}$/), 1, firstList);
    assert.equal(count(firstReqs, "GET", /\/app\/cache\/manifests\/slot-/), 20, firstList);
    assert.equal(count(firstReqs, "PUT", /\/app\/cache\/manifests\/chain-[0-9a-f]{64}$/), 1, firstList);

    const r = await runKiln(args);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(hits(r), 20, r.stderr);
    // As with BuildKit, an unchanged rebuild reproduces the image: every history time is the cached
    // step's, the image's created is the last of them, so config and manifest are the same bytes.
    const digest = (out: string): string | undefined => /Built image (sha256:[0-9a-f]{64})/.exec(out)?.[1];
    assert.ok(digest(first.stderr) !== undefined, first.stderr);
    assert.equal(digest(r.stderr), digest(first.stderr));
    const reqs = [...f.proxy.requests];
    const list = reqs.map((q) => `${q.method} ${q.path}`).join("\n");

    // The pushed image's layers: none of them may be downloaded by a rebuild that hits on every step.
    const res = await fetch(`${f.reg.url}/v2/app/manifests/latest`, {
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    const manifest = (await res.json()) as { layers: { digest: string }[] };
    assert.equal(manifest.layers.length, 21);
    for (const l of manifest.layers) {
      assert.ok(
        !reqs.some((q) => q.method === "GET" && q.path.includes(l.digest)),
        `layer ${l.digest} downloaded:\n${list}`,
      );
    }
    // The base manifest once (no second GET to resolve the tag for an empty --cache-dir), the stage's
    // chain record once: it names the latest entry of all 20 positions, so no position is read on its
    // own, and the key of every step is the one the chain records (no per-key probe).
    assert.equal(count(reqs, "GET", /\/busybox\/manifests\//), 1, list);
    assert.equal(count(reqs, "GET", /\/app\/cache\/manifests\/chain-[0-9a-f]{64}$/), 1, list);
    assert.equal(count(reqs, "GET", /\/app\/cache\/manifests\//), 1, list);
    // An entry is read from its manifest's annotation, and the base config was kept in the state dir by
    // the first build (image-metadata/, by digest): no blob is read at all.
    assert.equal(count(reqs, "GET", /\/blobs\/sha256:/), 0, list);
    const kept = (await readdir(path.join(f.work, "state", "image-metadata"))).map((n) => n.replace(/\.json$/, ""));
    assert.ok(
      kept.some((hex) => count(firstReqs, "GET", new RegExp(`/busybox/blobs/sha256:${hex}$`)) === 1),
      `the base config is among the kept files: ${kept.join(", ")}\n${firstList}`,
    );
    // Push: the destination tag's manifest, read once at build start alongside the push-permission
    // check (POST + DELETE), names the 21 layers and the config, which is the same: nothing gets an
    // existence check, nothing is uploaded; the manifest PUT. Nothing is written to the cache
    // repository (the chain record is current: no entry, slot or chain write).
    assert.equal(count(reqs, "GET", /\/app\/manifests\/latest$/), 1, list);
    assert.equal(count(reqs, "HEAD", /\/app\/blobs\/sha256:/), 0, list);
    assert.equal(count(reqs, "POST", /\/app\/blobs\/uploads\//), 1, list);
    assert.equal(count(reqs, "DELETE", /\/app\/blobs\/uploads\//), 1, list);
    assert.equal(count(reqs, "PUT", /\/app\/blobs\/uploads\//), 0, list);
    assert.equal(count(reqs, "PUT", /\/app\/manifests\/latest$/), 1, list);
    assert.equal(count(reqs, "PUT", /\/app\/cache\//), 0, list);
    assert.equal(count(reqs, "POST", /\/app\/cache\//), 0, list);
    // A registry without auth is not pinged: its first request settles the scheme (RegistryHost.firstRequest).
    assert.equal(count(reqs, "GET", /^\/v2\/?$/), 0, list);
    assert.ok(reqs.length <= 6, `${reqs.length} requests:\n${list}`);

    // The same cached rebuild with the push refused: no step executes, so nothing waited for the check
    // until the push, which then fails with kaniko's push-permission error and writes no manifest.
    f.proxy.requests.splice(0);
    f.proxy.setRules([{ method: "POST", path: /\/app\/blobs\/uploads\/$/, fault: "status500", times: 20 }]);
    try {
      const refused = await runKiln(args);
      assert.notEqual(refused.code, 0, refused.stderr);
      assert.match(refused.stderr, /error checking push permissions/);
      assert.equal(count(f.proxy.requests, "PUT", /\/app\/manifests\//), 0);
    } finally {
      f.proxy.setRules([]);
    }
  });

  test("a refused push permission fails the build before any step runs, although it is checked alongside the pulls", async () => {
    const ctx = path.join(f.work, "refused");
    await writeTree(ctx, { Dockerfile: `FROM ${f.proxy.host}/busybox:latest\nRUN echo ran > /ran\n` });
    f.proxy.setRules([{ method: "POST", path: /\/refused\/blobs\/uploads\/$/, fault: "status500", times: 20 }]);
    try {
      const r = await buildAndPush(ctx, "refused");
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /error checking push permissions/);
      assert.doesNotMatch(r.stderr, /Running: \[/);
      // Nothing is pushed ahead of the check either (the base layer's mount would be the first).
      assert.equal(count(f.proxy.requests, "POST", /\/refused\/blobs\/uploads\/\?mount=/), 0);
      assert.equal(count(f.proxy.requests, "PUT", /\/refused\/blobs\//), 0);
    } finally {
      f.proxy.setRules([]);
    }
  });

  test("the push waits for the push check's upload session, not for its cancellation, which still ends before the build", async () => {
    const ctx = path.join(f.work, "cancel");
    await writeTree(ctx, { Dockerfile: `FROM ${f.proxy.host}/busybox:latest\nENV STEP=1\n` });
    // The check's DELETE is held until the manifest PUT arrives: a push that waited for the DELETE would
    // only get there after the proxy gave up holding it (released "timeout").
    f.proxy.injected.splice(0);
    f.proxy.requests.splice(0);
    f.proxy.setRules([
      {
        method: "DELETE",
        path: /\/cancel\/blobs\/uploads\//,
        fault: "hold",
        until: { method: "PUT", path: /\/cancel\/manifests\/latest$/ },
        maxMs: 20_000,
      },
    ]);
    try {
      const r = await buildAndPush(ctx, "cancel");
      assert.equal(r.code, 0, r.stderr);
      const list = f.proxy.requests.map((q) => `${q.method} ${q.path}`).join("\n");
      assert.deepEqual(
        f.proxy.injected.map((i) => `${i.fault} ${i.method} ${i.released}`),
        ["hold DELETE until"],
        list,
      );
      // The session was cancelled before the build returned: the registry no longer knows it.
      // (Its status is read with the session's signed state, as the registry answers 404 without it.)
      const session = f.proxy.requests.find((q) => q.method === "DELETE")?.path;
      assert.ok(session !== undefined && /\/blobs\/uploads\/[0-9a-f-]+\?_state=/.test(session), list);
      const res = await fetch(`${f.reg.url}${session}`);
      await res.arrayBuffer();
      assert.equal(res.status, 404, `upload session ${session} still open`);
    } finally {
      f.proxy.setRules([]);
    }
  });

  test("a build that fails still completes the push check's cancellation (the upload session is not left open)", async () => {
    const ctx = path.join(f.work, "cancel-fail");
    await writeTree(ctx, { Dockerfile: `FROM ${f.proxy.host}/busybox:latest\nRUN exit 3\n` });
    // The DELETE is held (1 s) past the RUN's failure: a build that aborted it then would leave the session
    // open, and the proxy records the request as abandoned by its client.
    f.proxy.injected.splice(0);
    f.proxy.requests.splice(0);
    f.proxy.setRules([
      { method: "DELETE", path: /\/cancel-fail\/blobs\/uploads\//, fault: "hold", until: { path: /^$/ }, maxMs: 1000 },
    ]);
    try {
      const r = await buildAndPush(ctx, "cancel-fail");
      assert.equal(r.code, 3, r.stderr);
      const list = f.proxy.requests.map((q) => `${q.method} ${q.path}`).join("\n");
      assert.deepEqual(
        f.proxy.injected.map((i) => `${i.fault} ${i.method} ${i.released}`),
        ["hold DELETE timeout"],
        list,
      );
      const session = f.proxy.requests.find((q) => q.method === "DELETE")?.path;
      assert.ok(session !== undefined, list);
      const res = await fetch(`${f.reg.url}${session}`);
      await res.arrayBuffer();
      assert.equal(res.status, 404, `upload session ${session} still open`);
    } finally {
      f.proxy.setRules([]);
    }
  });
});
