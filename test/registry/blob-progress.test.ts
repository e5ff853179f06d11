import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, test } from "node:test";
import type { Digest } from "../../src/image/digest.js";
import {
  anonymousKeychain,
  parseReference,
  RegistryClient,
  type RegistryClientOptions,
  type RegistryEvent,
} from "../../src/registry/index.js";
import { startFaultProxy, type FaultProxy } from "../support/fault-proxy.js";
import { readAllStream, startRegistry, testImage, testLayer, type TestRegistry } from "../support/registry.js";

type Progress = Extract<RegistryEvent, { kind: "blob-progress" }>;

const amd64 = { os: "linux", architecture: "amd64" };
let reg: TestRegistry;
let slow: FaultProxy;
before(async () => {
  reg = await startRegistry();
  // A slow link: 2 MiB/s for blob and manifest downloads.
  slow = await startFaultProxy({ target: reg.host, bytesPerSecond: 2 * 1024 * 1024 });
});
after(async () => {
  await slow?.stop();
  await reg?.stop();
});

function client(extra: Partial<RegistryClientOptions> = {}): { c: RegistryClient; events: RegistryEvent[] } {
  const events: RegistryEvent[] = [];
  const c = new RegistryClient({
    env: {},
    hostOptions: () => ({ insecure: true }),
    keychain: anonymousKeychain,
    retries: 3,
    retryBaseDelayMs: 5,
    onEvent: (e) => events.push(e),
    ...extra,
  });
  return { c, events };
}

function progressOf(events: RegistryEvent[], direction: "pull" | "push", digest: Digest): Progress[] {
  return events.filter(
    (e): e is Progress => e.kind === "blob-progress" && e.direction === direction && e.digest === digest,
  );
}

/** Byte counts only grow, stay within the size, and the one final event is done at the full size. */
function assertCompleteTransfer(ps: Progress[], size: number): void {
  assert.ok(ps.length > 0, "progress was reported");
  for (let i = 1; i < ps.length; i++) {
    assert.ok(
      (ps[i]?.bytes ?? 0) >= (ps[i - 1]?.bytes ?? 0),
      `bytes never decrease: ${ps.map((p) => p.bytes).join(",")}`,
    );
  }
  for (const p of ps) assert.equal(p.total, size);
  for (const p of ps.slice(0, -1)) assert.equal(p.done, false);
  const last = ps.at(-1);
  assert.equal(last?.done, true);
  assert.equal(last?.bytes, size);
  assert.equal(last?.failed, undefined);
}

test("a pull over a slow link reports growing byte counts ending at the blob size, across a resumed download", async () => {
  const layer = testLayer({ "big.bin": randomBytes(1024 * 1024) });
  const seed = client();
  await seed.c.pushImage(parseReference(`${reg.host}/slowpull:1`), testImage([layer]));
  await seed.c.close();
  // The first GET of the layer is cut off half-way: the resumed download must continue the count.
  slow.setRules([{ method: "GET", path: new RegExp(`/blobs/${layer.digest}`), fault: "reset" }]);
  const { c, events } = client();
  try {
    const img = await c.pullImage(parseReference(`${slow.host}/slowpull:1`), { platform: amd64 });
    const started = performance.now();
    const gz = await readAllStream(await (img.layers[0] as (typeof img.layers)[number]).openCompressed());
    const elapsed = performance.now() - started;
    assert.deepEqual(gz, layer.gz);
    const ps = progressOf(events, "pull", layer.digest);
    assertCompleteTransfer(ps, layer.size);
    // ~0.5 s at 2 MiB/s with updates at most every 100 ms: several intermediate updates, but no more
    // than one per 100 ms (+ the final one), not one per network chunk.
    assert.ok(ps.length >= 3, `several updates, got ${ps.map((p) => p.bytes).join(",")}`);
    assert.ok(ps.length <= Math.floor(elapsed / 100) + 1, `${ps.length} events in ${Math.round(elapsed)} ms`);
    assert.ok(
      events.some((e) => e.kind === "retry"),
      "the reset was retried",
    );
    // The config blob is small: a single final event.
    const cfg = progressOf(events, "pull", img.manifest.config.digest);
    assert.equal(cfg.length, 1);
    assertCompleteTransfer(cfg, img.manifest.config.size);
  } finally {
    await c.close();
  }
});

test("a push reports each uploaded blob once complete; blobs the registry has report nothing", async () => {
  const layer = testLayer({ "p.bin": randomBytes(512 * 1024) });
  const image = testImage([layer]);
  const { c, events } = client({ progressIntervalMs: 0 });
  try {
    await c.pushImage(parseReference(`${reg.host}/pushprogress:1`), image);
    assertCompleteTransfer(progressOf(events, "push", layer.digest), layer.size);
    assertCompleteTransfer(progressOf(events, "push", image.manifest.config.digest), image.manifest.config.size);
    const n = events.length;
    await c.pushImage(parseReference(`${reg.host}/pushprogress:2`), image);
    assert.equal(events.slice(n).filter((e) => e.kind === "blob-progress").length, 0);
  } finally {
    await c.close();
  }
});

test("a chunked push counts per uploaded chunk", async () => {
  const layer = testLayer({ "c.bin": randomBytes(11 * 1024 * 1024) });
  const { c, events } = client({ uploadChunkSize: 5 * 1024 * 1024, progressIntervalMs: 0 });
  try {
    await c.pushImage(parseReference(`${reg.host}/chunkprogress:1`), testImage([layer]));
    const ps = progressOf(events, "push", layer.digest);
    assertCompleteTransfer(ps, layer.size);
    assert.deepEqual(
      ps.slice(0, -1).map((p) => p.bytes),
      [5 * 1024 * 1024, 10 * 1024 * 1024, layer.size],
    );
  } finally {
    await c.close();
  }
});

test("a download that fails verification ends with a failed event", async () => {
  const layer = testLayer({ "f.bin": randomBytes(64 * 1024) });
  const seed = client();
  await seed.c.pushImage(parseReference(`${reg.host}/failprogress:1`), testImage([layer]));
  await seed.c.close();
  slow.setRules([{ method: "GET", path: new RegExp(`/blobs/${layer.digest}`), fault: "flip", times: 100 }]);
  const { c, events } = client({ retries: 0 });
  try {
    const img = await c.pullImage(parseReference(`${slow.host}/failprogress:1`), { platform: amd64 });
    await assert.rejects(readAllStream(await (img.layers[0] as (typeof img.layers)[number]).openCompressed()));
    const last = progressOf(events, "pull", layer.digest).at(-1);
    assert.equal(last?.done, true);
    assert.equal(last?.failed, true);
  } finally {
    slow.setRules([]);
    await c.close();
  }
});
