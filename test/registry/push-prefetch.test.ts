/**
 * `RegistryClient.prefetchPushState`: the destination tag's manifest, read once at build start, lets
 * the push skip the existence checks (HEADs) of the blobs it names; a registry that lost one of them
 * (deleted, garbage-collected) still gets a complete push. Real registry behind a counting proxy;
 * skopeo pulls every blob as the independent check.
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { Digest } from "../../src/image/digest.js";
import { UNCHECKED_UPLOAD_MAX_BYTES } from "../../src/registry/push.js";
import {
  anonymousKeychain,
  parseReference,
  RegistryClient,
  staticKeychain,
  type RegistryClientOptions,
  type RegistryEvent,
} from "../../src/registry/index.js";
import type { FaultProxy } from "../support/fault-proxy.js";
import { startRegistry, testImage, testLayer, type TestRegistry } from "../support/registry.js";
import { useSuiteFixture } from "../support/suite-fixture.js";

function newClient(extra: Partial<RegistryClientOptions> = {}): { client: RegistryClient; events: RegistryEvent[] } {
  const events: RegistryEvent[] = [];
  const client = new RegistryClient({
    env: {},
    hostOptions: () => ({}),
    keychain: anonymousKeychain,
    retries: 2,
    retryBaseDelayMs: 10,
    onEvent: (e) => events.push(e),
    ...extra,
  });
  return { client, events };
}

function kinds(events: RegistryEvent[], kind: RegistryEvent["kind"]): RegistryEvent[] {
  return events.filter((e) => e.kind === kind);
}

function count(reqs: FaultProxy["requests"], method: string, re: RegExp): number {
  return reqs.filter((q) => q.method === method && re.test(q.path)).length;
}

/** Pulls every blob of an image with skopeo (an independent client): throws if one is missing or corrupt. */
function skopeoPullAll(ref: string, dir: string): void {
  execFileSync("skopeo", ["copy", "--src-tls-verify=false", `docker://${ref}`, `dir:${dir}`], { stdio: "pipe" });
}

describe("push with the destination tag's blobs prefetched", () => {
  const fx = useSuiteFixture("push-prefetch", { registry: "empty", proxy: true });

  test("blobs the tag already holds get no HEAD, the small new config is uploaded unchecked, a large new layer is checked", async () => {
    const l1 = testLayer({ a: "prefetch-1" });
    const l2 = testLayer({ b: "prefetch-2" });
    // Incompressible and above UNCHECKED_UPLOAD_MAX_BYTES: a new layer this size is checked first.
    const l3 = testLayer({ c: randomBytes(96 * 1024) });
    const first = newClient();
    await first.client.pushImage(parseReference(`${fx.proxy.host}/app:latest`), testImage([l1, l2]));
    await first.client.close();

    const { client, events } = newClient();
    try {
      fx.proxy.requests.splice(0);
      const ref = parseReference(`${fx.proxy.host}/app:latest`);
      assert.equal(await client.prefetchPushState(ref), 3);
      assert.equal(count(fx.proxy.requests, "GET", /^\/v2\/app\/manifests\/latest$/), 1);
      const next = testImage([l1, l2, l3], "oci", ["/bin/true"]);
      assert.equal(await client.pushImage(ref, next), next.digest);
      const reqs = [...fx.proxy.requests];
      const list = reqs.map((q) => `${q.method} ${q.path}`).join("\n");
      // l1 and l2 are taken from the tag's manifest; the new config is uploaded at once, l3 checked first.
      assert.ok(l3.size > UNCHECKED_UPLOAD_MAX_BYTES);
      assert.equal(count(reqs, "HEAD", /\/blobs\//), 1, list);
      assert.equal(count(reqs, "HEAD", new RegExp(l3.digest)), 1, list);
      assert.ok(!reqs.some((q) => q.method === "HEAD" && (q.path.includes(l1.digest) || q.path.includes(l2.digest))));
      assert.equal(kinds(events, "blob-exists").length, 2);
      assert.equal(kinds(events, "blob-pushed").length, 2);
      assert.equal(count(reqs, "PUT", /\/manifests\/latest$/), 1, list);
      assert.equal(kinds(events, "retry").length, 0);
      skopeoPullAll(`${fx.reg.host}/app:latest`, `${fx.work}/app`);
    } finally {
      await client.close();
    }
  });

  test("a missing tag, a digest reference or an index leave nothing assumed", async () => {
    const { client } = newClient();
    try {
      // Above UNCHECKED_UPLOAD_MAX_BYTES: a layer checked first unless assumed present (the small new config
      // is uploaded unchecked either way).
      const image = testImage([testLayer({ d: randomBytes(96 * 1024) })]);
      fx.proxy.requests.splice(0);
      assert.equal(await client.prefetchPushState(parseReference(`${fx.proxy.host}/none:latest`)), 0);
      assert.equal(await client.prefetchPushState(parseReference(`${fx.proxy.host}/none@${image.digest}`)), 0);
      // The digest reference is not read at all.
      assert.equal(fx.proxy.requests.filter((q) => q.path.startsWith("/v2/none/")).length, 1);
      await client.pushImage(parseReference(`${fx.proxy.host}/none:latest`), image);
      assert.equal(count(fx.proxy.requests, "HEAD", /^\/v2\/none\/blobs\//), 1);
      assert.equal(count(fx.proxy.requests, "HEAD", new RegExp(image.layers[0]?.digest ?? "none")), 1);

      // An index under the tag: its images' blobs are not named, so every blob is checked.
      const index = JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [
          {
            mediaType: image.mediaType,
            digest: image.digest,
            size: image.rawManifest.length,
            platform: { os: "linux", architecture: "amd64" },
          },
        ],
      });
      const res = await fetch(`${fx.reg.url}/v2/none/manifests/multi`, {
        method: "PUT",
        headers: { "content-type": "application/vnd.oci.image.index.v1+json" },
        body: index,
      });
      assert.equal(res.status, 201);
      const other = newClient();
      assert.equal(await other.client.prefetchPushState(parseReference(`${fx.proxy.host}/none:multi`)), 0);
      await other.client.close();
    } finally {
      await client.close();
    }
  });

  test("a layer deleted after the tag was read: the refused manifest makes the push check every blob, upload the lost one and succeed", async () => {
    const l1 = testLayer({ e: "gone-1" });
    const l2 = testLayer({ f: "gone-2" });
    const image = testImage([l1, l2]);
    const first = newClient();
    await first.client.pushImage(parseReference(`${fx.proxy.host}/gc:latest`), image);
    await first.client.close();

    const { client, events } = newClient();
    try {
      const ref = parseReference(`${fx.proxy.host}/gc:latest`);
      assert.equal(await client.prefetchPushState(ref), 3);
      const del = await fetch(`${fx.reg.url}/v2/gc/blobs/${l1.digest}`, { method: "DELETE" });
      assert.equal(del.status, 202);
      const head = await fetch(`${fx.reg.url}/v2/gc/blobs/${l1.digest}`, { method: "HEAD" });
      assert.equal(head.status, 404);

      fx.proxy.requests.splice(0);
      assert.equal(await client.pushImage(ref, image), image.digest);
      const reqs = [...fx.proxy.requests];
      const list = reqs.map((q) => `${q.method} ${q.path}`).join("\n");
      // First PUT refused (MANIFEST_BLOB_UNKNOWN), then one HEAD per blob, the lost layer uploaded, PUT again.
      assert.equal(count(reqs, "PUT", /\/gc\/manifests\/latest$/), 2, list);
      assert.equal(count(reqs, "HEAD", /\/gc\/blobs\//), 3, list);
      const pushed = kinds(events, "blob-pushed").map((e) => (e as { digest: Digest }).digest);
      assert.deepEqual(pushed, [l1.digest]);
      const retries = kinds(events, "retry");
      assert.equal(retries.length, 1);
      assert.match((retries[0] as { reason: string }).reason, /MANIFEST_BLOB_UNKNOWN.*assumed present/);
      skopeoPullAll(`${fx.reg.host}/gc:latest`, `${fx.work}/gc`);

      // What the safety net verified is remembered: a next push to the repository checks nothing and
      // uploads only its new config (small and made by the build: unchecked).
      fx.proxy.requests.splice(0);
      const again = testImage([l1, l2], "oci", ["/bin/true"]);
      await client.pushImage(parseReference(`${fx.proxy.host}/gc:again`), again);
      assert.equal(count(fx.proxy.requests, "HEAD", /\/gc\/blobs\//), 0);
      const uploads = fx.proxy.requests.filter((q) => q.method === "PUT" && q.path.includes("/gc/blobs/uploads/"));
      assert.deepEqual(
        uploads.map((q) => new URL(q.path, "http://x").searchParams.get("digest")),
        [again.manifest.config.digest],
      );
    } finally {
      await client.close();
    }
  });

  test("the push-permission check cancels its upload session, as kaniko's does; the push opens its own", async () => {
    const { client } = newClient();
    try {
      const ref = parseReference(`${fx.proxy.host}/check:1`);
      fx.proxy.requests.splice(0);
      await client.checkPushPermission(ref);
      assert.equal(count(fx.proxy.requests, "POST", /^\/v2\/check\/blobs\/uploads\/$/), 1);
      assert.equal(count(fx.proxy.requests, "DELETE", /^\/v2\/check\/blobs\/uploads\//), 1);
      const image = testImage([testLayer({ h: "checked-push" })]);
      assert.equal(await client.pushImage(ref, image), image.digest);
      const reqs = [...fx.proxy.requests];
      const list = reqs.map((q) => `${q.method} ${q.path}`).join("\n");
      // Two new blobs (config, layer): one upload session each, besides the check's cancelled one.
      assert.equal(count(reqs, "POST", /^\/v2\/check\/blobs\/uploads\/$/), 3, list);
      assert.equal(count(reqs, "PUT", /^\/v2\/check\/blobs\/uploads\//), 2, list);
      assert.equal(count(reqs, "DELETE", /\/blobs\/uploads\//), 1, list);
      skopeoPullAll(`${fx.reg.host}/check:1`, `${fx.work}/check`);
    } finally {
      await client.close();
    }
  });
});

test("Docker Hub tags are not read: its pull rate limit counts every manifest GET", async () => {
  const asked: string[] = [];
  const { client } = newClient({
    hostOptions: (registry) => {
      asked.push(registry);
      return {};
    },
  });
  try {
    assert.equal(await client.prefetchPushState(parseReference("docker.io/someone/app:latest")), 0);
    assert.equal(await client.prefetchPushState(parseReference("someone/app")), 0);
    assert.deepEqual(asked, []);
  } finally {
    await client.close();
  }
});

describe("prefetch with token auth", () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry({ token: true, htpasswd: { username: "kiln", password: "pf-Pa55word" } });
  });
  after(async () => reg?.stop());

  test("the tag read shares the push's token: one token request for check, read and push", async () => {
    const issuer = reg.tokenIssuer;
    assert.ok(issuer);
    const keychain = staticKeychain({ [reg.host]: { username: "kiln", password: "pf-Pa55word" } });
    const image = testImage([testLayer({ g: "token-prefetch" })]);
    const ref = parseReference(`${reg.host}/tok/app:1`);
    const first = newClient({ keychain });
    await first.client.pushImage(ref, image);
    await first.client.close();

    const { client, events } = newClient({ keychain });
    try {
      const before = issuer.requests.length;
      const [known] = await Promise.all([client.prefetchPushState(ref), client.checkPushPermission(ref)]);
      assert.equal(known, 2);
      await client.pushImage(ref, image);
      const issued = issuer.requests.slice(before);
      // One pull,push token serves the read, the permission check's POST and the push (the check's
      // upload cancel adds its own `delete` scope request, read or not).
      const pullPush = issued.filter((r) => r.scopes.join(" ") === "repository:tok/app:pull,push");
      assert.equal(pullPush.length, 1, JSON.stringify(issued));
      assert.ok(
        issued.every((r) => r === pullPush[0] || r.scopes.includes("repository:tok/app:delete")),
        JSON.stringify(issued),
      );
      assert.equal(kinds(events, "blob-exists").length, 2);
    } finally {
      await client.close();
    }
  });
});
