import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, readdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { spoolLayer, type Layer } from "../image/index.js";
import { DirCacheStore } from "./dir-store.js";
import { entryFromImage, entryImage } from "./entry.js";
import { LayerCache } from "./layer-cache.js";
import { OciLayoutCacheStore } from "./layout-store.js";
import type { CacheStore } from "./store.js";

const platform = { os: "linux", architecture: "amd64" };

async function tmp(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), "kiln-cache-test-"));
}

async function layer(dir: string, text: string): Promise<Layer> {
  // Not a real tar; the stores treat layers as opaque blobs.
  return spoolLayer(Readable.from([Buffer.from(text)]), {
    dir,
    compression: "gzip",
    mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
  });
}

for (const [name, make] of [
  ["dir", (d: string) => new DirCacheStore(path.join(d, "cache"))],
  ["oci", (d: string) => new OciLayoutCacheStore(path.join(d, "cache"))],
] as const) {
  test(`${name} store: entries round-trip with their record; absent tags are misses`, async () => {
    const d = await tmp();
    try {
      const store: CacheStore = make(d);
      const l = await layer(path.join(d, "spool"), "hello");
      const record = { key: "a".repeat(64), slot: "s".repeat(64), inputs: { "arg:V": "01" }, createdBy: "RUN x" };
      await store.write(record.key, entryImage({ layer: l, record, created: new Date(1000) }, platform));
      assert.equal(await store.read("b".repeat(64)), undefined);
      const img = await store.read(record.key);
      assert.ok(img);
      const e = entryFromImage(img);
      assert.deepEqual(e?.record, record);
      assert.equal(e?.layer?.digest, l.digest);
      assert.equal(e?.layer?.diffId, l.diffId);
      assert.equal(e?.created.getTime(), 1000);
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });

  test(`${name} store: a tag outside the tag grammar (a hostile diffID in a header copy's) names no path`, async () => {
    const d = await tmp();
    try {
      const store = make(d);
      const l = await layer(path.join(d, "spool"), "x");
      const record = { key: "c".repeat(64), slot: "s".repeat(64), inputs: {}, createdBy: "RUN x" };
      const image = entryImage({ layer: l, record, created: new Date(1000) }, platform);
      for (const tag of ["hdr1-/../../../outside", "../outside", "a/b", ""]) {
        await assert.rejects(store.write(tag, image), /is not a tag/, tag);
        await assert.rejects(store.read(tag), /is not a tag/, tag);
      }
      assert.deepEqual(
        (await readdir(d)).filter((n) => n.includes("outside")),
        [],
      );
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });

  test(`${name} store: concurrent writers of many tags leave every entry readable`, async () => {
    const d = await tmp();
    try {
      const store = make(d);
      const writes: Promise<void>[] = [];
      for (let i = 0; i < 24; i++) {
        const l = await layer(path.join(d, "spool"), `layer ${i % 3}`);
        const key = String(i % 8).repeat(64);
        const record = { key, slot: "s".repeat(64), inputs: {}, createdBy: `RUN ${i % 8}` };
        writes.push(store.write(key, entryImage({ layer: l, record, created: new Date() }, platform)));
      }
      await Promise.all(writes);
      for (let i = 0; i < 8; i++) {
        const img = await store.read(String(i).repeat(64));
        assert.ok(img, `entry ${i}`);
        const stream = await img.layers[0]!.openCompressed();
        for await (const chunk of stream) void chunk; // verified read: throws on a corrupt blob
      }
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });
}

test("LayerCache: TTL, write switch, failed writes become warnings", async () => {
  const d = await tmp();
  try {
    const warnings: string[] = [];
    let now = new Date(10_000);
    const store = new DirCacheStore(path.join(d, "cache"));
    const cache = new LayerCache({
      store,
      platform,
      ttlMs: 5_000,
      write: true,
      now: () => now,
      onWarning: (m) => warnings.push(m),
    });
    const key = "c".repeat(64);
    cache.put({ key, slot: "d".repeat(64), inputs: { x: "1" }, createdBy: "WORKDIR /x" }, undefined);
    await cache.flush();
    assert.equal((await cache.lookup(key)).hit, true);
    assert.deepEqual(await cache.explain("d".repeat(64), { x: "2" }), ["x changed"]);
    now = new Date(15_000);
    assert.deepEqual(await cache.lookup(key), { hit: false, reason: "expired" });

    const readOnly = new LayerCache({
      store,
      platform,
      ttlMs: 5_000,
      write: false,
      now: () => now,
      onWarning: (m) => warnings.push(m),
    });
    readOnly.put({ key: "e".repeat(64), slot: "f".repeat(64), inputs: {}, createdBy: "RUN y" }, undefined);
    await readOnly.flush();
    assert.equal(await store.read("e".repeat(64)), undefined);

    const broken = new LayerCache({
      store: {
        description: "broken",
        read: () => Promise.reject(new Error("boom")),
        write: () => Promise.reject(new Error("disk full")),
      },
      platform,
      ttlMs: 5_000,
      write: true,
      now: () => now,
      onWarning: (m) => warnings.push(m),
    });
    broken.put({ key, slot: "d".repeat(64), inputs: {}, createdBy: "RUN z" }, undefined);
    await broken.flush();
    assert.deepEqual(await broken.lookup(key), { hit: false, reason: "error" });
    assert.equal(warnings.length, 2);
    assert.match(warnings[0]!, /disk full/);
    assert.match(warnings[1]!, /boom/);
    assert.ok((await readdir(path.join(d, "cache", "refs"))).length >= 2);
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});
