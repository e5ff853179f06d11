import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, test } from "node:test";
import { hasCode } from "../../src/common/errors.js";
import {
  anonymousKeychain,
  parseReference,
  RegistryClient,
  type RegistryClientOptions,
  type RegistryEvent,
} from "../../src/registry/index.js";
import { startFaultProxy } from "../support/fault-proxy.js";
import { readAllStream, startRegistry, testImage, testLayer, type TestRegistry } from "../support/registry.js";

const amd64 = { os: "linux", architecture: "amd64" };
let origin: TestRegistry;
let mirror: TestRegistry;
before(async () => {
  [origin, mirror] = await Promise.all([startRegistry(), startRegistry()]);
});
after(async () => {
  await Promise.all([origin?.stop(), mirror?.stop()]);
});

function client(extra: Partial<RegistryClientOptions> = {}): { c: RegistryClient; events: RegistryEvent[] } {
  const events: RegistryEvent[] = [];
  const c = new RegistryClient({
    env: {},
    hostOptions: () => ({}),
    keychain: anonymousKeychain,
    retries: 0,
    onEvent: (e) => events.push(e),
    ...extra,
  });
  return { c, events };
}

test("registry mirrors with a path prefix are tried first; origins name the mirror", async () => {
  const image = testImage([testLayer({ mirrored: "1" })]);
  const seed = client();
  await seed.c.pushImage(parseReference(`${mirror.host}/proj/app:1`), image);
  await seed.c.close();
  const { c } = client({ registryMap: [{ from: origin.host, to: [`${mirror.host}/proj`] }] });
  try {
    const img = await c.pullImage(parseReference(`${origin.host}/app:1`), { platform: amd64 });
    assert.equal(img.digest, image.digest);
    assert.deepEqual(img.layers[0]?.origins, [{ registry: mirror.host, repository: "proj/app" }]);
  } finally {
    await c.close();
  }
});

test("docker.io maps keep library/; a mirror miss falls back to the original unless skipDefaultFallback", async () => {
  const image = testImage([testLayer({ hub: "busybox" })]);
  const seed = client();
  await seed.c.pushImage(parseReference(`${mirror.host}/hub/library/busybox:latest`), image);
  await seed.c.pushImage(parseReference(`${origin.host}/only-origin:1`), image);
  await seed.c.close();

  const hub = client({ registryMap: [{ from: "docker.io", to: [`${mirror.host}/hub`] }], skipDefaultFallback: true });
  assert.equal((await hub.c.pullImage(parseReference("busybox"), { platform: amd64 })).digest, image.digest);
  await hub.c.close();

  const fb = client({ registryMap: [{ from: origin.host, to: [`${mirror.host}/empty`] }] });
  const img = await fb.c.pullImage(parseReference(`${origin.host}/only-origin:1`), { platform: amd64 });
  assert.equal(img.digest, image.digest);
  assert.equal(fb.events.filter((e) => e.kind === "mirror-failed").length, 1);
  await fb.c.close();

  const strict = client({
    registryMap: [{ from: origin.host, to: [`${mirror.host}/empty`] }],
    skipDefaultFallback: true,
  });
  await assert.rejects(
    strict.c.pullImage(parseReference(`${origin.host}/only-origin:1`), { platform: amd64 }),
    (e: unknown) => hasCode(e, "REGISTRY_NOT_FOUND") && e.message.includes(`${mirror.host}/empty/only-origin`),
  );
  await strict.c.close();
});

test("chunked upload: PATCH chunks of ≥ 5 MiB with Content-Range, then PUT", async () => {
  const layer = testLayer({ "random.bin": randomBytes(11 * 1024 * 1024) });
  const image = testImage([layer]);
  const proxy = await startFaultProxy({ target: origin.host });
  const { c } = client({ uploadChunkSize: 1024 });
  try {
    assert.equal(await c.pushImage(parseReference(`${proxy.host}/chunked:1`), image), image.digest);
    const patches = proxy.requests.filter((r) => r.method === "PATCH");
    assert.equal(patches.length, Math.ceil(layer.size / (5 * 1024 * 1024)));
    const pulled = await c.pullImage(parseReference(`${origin.host}/chunked:1`), { platform: amd64 });
    const gz = await readAllStream(await (pulled.layers[0] as (typeof pulled.layers)[number]).openCompressed());
    assert.ok(gz.equals(layer.gz));
  } finally {
    await c.close();
    await proxy.stop();
  }
});

test("ECR-style answers: PATCH 201 instead of 202 still completes a chunked upload", async () => {
  const layer = testLayer({ "ecr.bin": randomBytes(6 * 1024 * 1024) });
  const image = testImage([layer]);
  const proxy = await startFaultProxy({
    target: origin.host,
    rules: [{ method: "PATCH", fault: "as201", times: 100 }],
  });
  const { c } = client({ uploadChunkSize: 5 * 1024 * 1024 });
  try {
    assert.equal(await c.pushImage(parseReference(`${proxy.host}/ecr:1`), image), image.digest);
    assert.equal(proxy.injected.filter((f) => f.fault === "as201").length, 2);
    assert.equal((await c.getManifest(parseReference(`${origin.host}/ecr:1`)))?.digest, image.digest);
  } finally {
    await c.close();
    await proxy.stop();
  }
});

test("a failing cross-repository mount falls back to a plain upload", async () => {
  const image = testImage([testLayer({ mountfail: "1" })]);
  const seed = client();
  await seed.c.pushImage(parseReference(`${origin.host}/mnt/src:1`), image);
  // Layers stay tied to the client that pulled them: keep it open while they are read.
  const pulled = await seed.c.pullImage(parseReference(`${origin.host}/mnt/src:1`), { platform: amd64 });
  const proxy = await startFaultProxy({
    target: origin.host,
    rules: [{ method: "POST", path: /mount=/, fault: "status500", times: 10 }],
  });
  const { c, events } = client();
  try {
    // The pulled layer's origin is on origin.host, not on the proxy host: no mount is attempted.
    await c.pushImage(parseReference(`${proxy.host}/mnt/dst:1`), pulled);
    assert.equal(proxy.injected.length, 0);
    // Same registry host: mount is attempted, fails with 500, and the blob is uploaded instead.
    const direct = await c.pullImage(parseReference(`${proxy.host}/mnt/src:1`), { platform: amd64 });
    await c.pushImage(parseReference(`${proxy.host}/mnt/dst2:1`), direct);
    assert.equal(proxy.injected.length, 1);
    assert.equal(events.filter((e) => e.kind === "blob-mounted").length, 0);
    assert.ok(events.some((e) => e.kind === "blob-pushed" && e.repository === "mnt/dst2"));
  } finally {
    await seed.c.close();
    await c.close();
    await proxy.stop();
  }
});
