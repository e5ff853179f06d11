import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { readdir } from "node:fs/promises";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { hasCode } from "../../src/common/errors.js";
import { sha256Digest } from "../../src/image/digest.js";
import { writeDockerArchive, writeOciLayout } from "../../src/image/index.js";
import {
  anonymousKeychain,
  parseReference,
  RegistryClient,
  type RegistryClientOptions,
  type RegistryEvent,
} from "../../src/registry/index.js";
import { startFaultProxy, type FaultProxy } from "../support/fault-proxy.js";
import { readAllStream, startRegistry, testImage, testLayer, type TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";

const amd64 = { os: "linux", architecture: "amd64" };
let reg: TestRegistry;
let proxy: FaultProxy;
before(async () => {
  reg = await startRegistry();
  proxy = await startFaultProxy({ target: reg.host });
});
after(async () => {
  await proxy?.stop();
  await reg?.stop();
});

function client(extra: Partial<RegistryClientOptions> = {}): { c: RegistryClient; events: RegistryEvent[] } {
  const events: RegistryEvent[] = [];
  const c = new RegistryClient({
    env: {},
    hostOptions: () => ({ insecure: true }),
    keychain: anonymousKeychain,
    retries: 4,
    retryBaseDelayMs: 5,
    onEvent: (e) => events.push(e),
    ...extra,
  });
  return { c, events };
}

async function seed(repo: string, files: Record<string, string | Buffer>): Promise<ReturnType<typeof testLayer>> {
  const layer = testLayer(files);
  const { c } = client();
  await c.pushImage(parseReference(`${reg.host}/${repo}:1`), testImage([layer]));
  await c.close();
  return layer;
}

test("pull survives resets, truncation, 5xx and 429 (Retry-After) and yields identical bytes", async () => {
  const layer = await seed("pullfaults", { "big.bin": randomBytes(256 * 1024) });
  proxy.setRules([
    { method: "GET", path: /\/manifests\//, fault: "status503" },
    { method: "GET", path: /\/manifests\//, fault: "status429", retryAfter: 1 },
    { method: "GET", path: /\/blobs\//, fault: "status502" },
    { method: "GET", path: new RegExp(`/blobs/${layer.digest}`), fault: "reset" },
    { method: "GET", path: new RegExp(`/blobs/${layer.digest}`), fault: "truncate" },
  ]);
  const before = proxy.injected.length;
  const { c, events } = client();
  try {
    const t0 = Date.now();
    const img = await c.pullImage(parseReference(`${proxy.host}/pullfaults:1`), { platform: amd64 });
    assert.ok(Date.now() - t0 >= 900, "Retry-After: 1 was honoured");
    const gz = await readAllStream(await (img.layers[0] as (typeof img.layers)[number]).openCompressed());
    assert.deepEqual(gz, layer.gz);
    assert.equal(proxy.injected.length - before, 5);
    assert.ok(events.filter((e) => e.kind === "retry").length >= 5);
    // A resumed blob download asked for the rest with Range.
    assert.ok(proxy.requests.some((r) => r.path.includes(layer.digest) && /^bytes=[1-9]\d*-$/.test(r.range ?? "")));
  } finally {
    await c.close();
  }
});

test("a flipped byte is a DIGEST_MISMATCH naming the blob", async () => {
  const layer = await seed("flip", { f: randomBytes(4096) });
  proxy.setRules([{ method: "GET", path: new RegExp(`/blobs/${layer.digest}`), fault: "flip", times: 100 }]);
  const { c } = client();
  try {
    const img = await c.pullImage(parseReference(`${proxy.host}/flip:1`), { platform: amd64 });
    const l = img.layers[0];
    assert.ok(l);
    await assert.rejects(
      readAllStream(await l.openCompressed()),
      (e: unknown) => hasCode(e, "DIGEST_MISMATCH") && e.message.includes(layer.digest) && e.message.includes("flip"),
    );
    // Through decompression the verification error still wins over zlib's complaint.
    await assert.rejects(
      readAllStream(await l.openUncompressed()),
      (e: unknown) => hasCode(e, "DIGEST_MISMATCH") && e.message.includes(layer.digest),
    );
    // The sinks rely on the registry layer's own verification (they do not hash it again): a corrupt
    // blob still fails the OCI layout and the docker-archive, and leaves no blob file behind.
    assert.equal(l.verifiesCompressed, true);
    const out = await tempDir("flip-sinks");
    try {
      await assert.rejects(writeOciLayout(path.join(out, "layout"), img), (e: unknown) =>
        hasCode(e, "DIGEST_MISMATCH"),
      );
      const blobs = await readdir(path.join(out, "layout", "blobs", "sha256")).catch(() => []);
      assert.ok(!blobs.some((b) => layer.digest.endsWith(b)), `no blob file for ${layer.digest}: ${blobs.join(", ")}`);
      await assert.rejects(writeDockerArchive(path.join(out, "image.tar"), img, []), (e: unknown) =>
        hasCode(e, "DIGEST_MISMATCH"),
      );
    } finally {
      await removeDir(out);
    }
  } finally {
    proxy.setRules([]);
    await c.close();
  }
});

test("a corrupted manifest is refused", async () => {
  await seed("flipmanifest", { m: "m" });
  const { c } = client();
  try {
    const ref = parseReference(`${reg.host}/flipmanifest:1`);
    const real = await c.getManifest(ref);
    assert.ok(real);
    proxy.setRules([{ method: "GET", path: /\/flipmanifest\/manifests\//, fault: "flip", times: 100 }]);
    await assert.rejects(
      c.getManifest(parseReference(`${proxy.host}/flipmanifest@${real.digest}`)),
      (e: unknown) => hasCode(e, "DIGEST_MISMATCH") && e.message.includes(real.digest),
    );
  } finally {
    proxy.setRules([]);
    await c.close();
  }
});

test("push survives 5xx on upload and manifest PUT; skopeo reads the result", async () => {
  const image = testImage([testLayer({ p: randomBytes(64 * 1024) }), testLayer({ q: "q" })]);
  proxy.setRules([
    { method: "POST", path: /\/blobs\/uploads\//, fault: "status500" },
    { method: "PUT", path: /\/blobs\/uploads\//, fault: "status502", times: 2 },
    { method: "HEAD", fault: "status503" },
    { method: "PUT", path: /\/manifests\//, fault: "status500" },
  ]);
  const { c, events } = client();
  try {
    assert.equal(await c.pushImage(parseReference(`${proxy.host}/pushfaults:1`), image), image.digest);
    assert.ok(events.filter((e) => e.kind === "retry").length >= 5);
    const out = JSON.parse(
      execFileSync("skopeo", ["inspect", "--tls-verify=false", `docker://${reg.host}/pushfaults:1`], {
        encoding: "utf8",
      }),
    ) as { Digest: string };
    assert.equal(out.Digest, image.digest);
  } finally {
    proxy.setRules([]);
    await c.close();
  }
});

test("a persistent 503 fails after the configured retries with a clear error", async () => {
  proxy.setRules([{ path: /\/persist\//, fault: "status503", times: 100 }]);
  const { c, events } = client({ retries: 2 });
  try {
    await assert.rejects(
      c.pullImage(parseReference(`${proxy.host}/persist:1`), { platform: amd64 }),
      (e: unknown) => hasCode(e, "REGISTRY_UNAVAILABLE") && /503 Service Unavailable/.test(e.message),
    );
    assert.equal(events.filter((e) => e.kind === "retry").length, 2);
  } finally {
    proxy.setRules([]);
    await c.close();
  }
});

test("a connection reset mid-body that is not retried fails naming the registry, repository and blob", async () => {
  const layer = await seed("resets", { "big.bin": randomBytes(256 * 1024) });
  proxy.setRules([{ method: "GET", path: new RegExp(`/blobs/${layer.digest}`), fault: "reset" }]);
  const { c } = client({ retries: 0 });
  try {
    const img = await c.pullImage(parseReference(`${proxy.host}/resets:1`), { platform: amd64 });
    await assert.rejects(
      readAllStream(await (img.layers[0] as (typeof img.layers)[number]).openCompressed()),
      (e: unknown) =>
        hasCode(e, "REGISTRY_UNREACHABLE") &&
        e.message.startsWith(`pulling blob ${layer.digest} of ${proxy.host}/resets: cannot talk to the registry: `),
    );
  } finally {
    proxy.setRules([]);
    await c.close();
  }
});

test("seeded random faults: pull and push still produce identical results", async () => {
  const layers = [testLayer({ a: randomBytes(100_000) }), testLayer({ b: randomBytes(50_000) }), testLayer({ c: "c" })];
  const image = testImage(layers);
  const rnd = await startFaultProxy({
    target: reg.host,
    random: { seed: 20261126, rate: 0.3, faults: ["reset", "truncate", "status500", "status502", "status503"] },
  });
  const { c } = client({ retries: 8 });
  try {
    assert.equal(await c.pushImage(parseReference(`${rnd.host}/random:1`), image), image.digest);
    const pulled = await c.pullImage(parseReference(`${rnd.host}/random:1`), { platform: amd64 });
    assert.equal(pulled.digest, image.digest);
    for (const [i, l] of pulled.layers.entries()) {
      const tar = await readAllStream(await l.openUncompressed());
      assert.equal(sha256Digest(tar), layers[i]?.diffId);
    }
    assert.ok(rnd.injected.length > 0, "the schedule injected faults");
  } finally {
    await c.close();
    await rnd.stop();
  }
});

test("HTTP_PROXY is used for registries not in NO_PROXY", async () => {
  const image = testImage([testLayer({ viaproxy: "1" })]);
  const before = proxy.tunnels.length;
  const a = client({ env: { HTTP_PROXY: `http://${proxy.host}`, NO_PROXY: "" } });
  await a.c.pushImage(parseReference(`${reg.host}/proxied:1`), image);
  await a.c.close();
  assert.ok(proxy.tunnels.length > before, "requests went through the proxy");
  const mid = proxy.tunnels.length;
  const b = client({ env: { HTTP_PROXY: `http://${proxy.host}`, NO_PROXY: "127.0.0.1" } });
  await b.c.getManifest(parseReference(`${reg.host}/proxied:1`));
  await b.c.close();
  assert.equal(proxy.tunnels.length, mid, "NO_PROXY bypassed the proxy");
});

test("an aborted pull stops at once without retries", async () => {
  await seed("abort", { a: randomBytes(200_000) });
  const { c, events } = client();
  try {
    const img = await c.pullImage(parseReference(`${reg.host}/abort:1`), { platform: amd64 });
    const ac = new AbortController();
    const stream = await (img.layers[0] as (typeof img.layers)[number]).openCompressed(ac.signal);
    ac.abort();
    await assert.rejects(readAllStream(stream), (e: unknown) => e instanceof Error && e.name === "AbortError");
    const ac2 = new AbortController();
    ac2.abort();
    await assert.rejects(
      c.pullImage(parseReference(`${reg.host}/abort:1`), { platform: amd64, signal: ac2.signal }),
      (e: unknown) => e instanceof Error && e.name === "AbortError",
    );
    assert.equal(events.filter((e) => e.kind === "retry").length, 0);
  } finally {
    await c.close();
  }
});

test("--insecure speaks plain HTTP to a registry (a registry with a port is tried over HTTP first)", async () => {
  const { c } = client({ hostOptions: () => ({ insecure: true }) });
  try {
    await seed("insecure", { i: "i" });
    assert.ok(await c.getManifest(parseReference(`${reg.host}/insecure:1`)));
  } finally {
    await c.close();
  }
});
