import { test } from "node:test";
import assert from "node:assert/strict";
import type { Image } from "../image/index.js";
import { LayerCache, slotTag } from "./layer-cache.js";
import type { CacheStore } from "./store.js";

/** An in-memory store that counts reads per tag (the round trips a registry store would make). */
class CountingStore implements CacheStore {
  readonly description = "mem";
  readonly images = new Map<string, Image>();
  readonly reads = new Map<string, number>();
  async read(tag: string): Promise<Image | undefined> {
    this.reads.set(tag, (this.reads.get(tag) ?? 0) + 1);
    return this.images.get(tag);
  }
  async write(tag: string, image: Image): Promise<void> {
    this.images.set(tag, image);
  }
}

const platform = { os: "linux", architecture: "amd64" };
const KEY = "a".repeat(64);
const SLOT = "b".repeat(64);

function cache(store: CacheStore, ttlMs = 3_600_000): LayerCache {
  return new LayerCache({ store, platform, ttlMs, write: true, now: () => new Date(), onWarning: () => undefined });
}

async function filled(): Promise<CountingStore> {
  const store = new CountingStore();
  const writer = cache(store);
  writer.put({ key: KEY, slot: SLOT, inputs: { instruction: "x" }, createdBy: "RUN x" }, undefined);
  await writer.flush();
  store.reads.clear();
  return store;
}

test("a key carried by its position's latest entry hits from the prefetched read, with no read of the key", async () => {
  const store = await filled();
  const c = cache(store);
  c.prefetch([SLOT]);
  const found = await c.lookup(KEY, undefined, SLOT);
  assert.equal(found.hit, true);
  assert.equal(store.reads.get(slotTag(SLOT)), 1);
  assert.equal(store.reads.get(KEY), undefined);
});

test("another key falls back to reading the key; explaining reuses the position's read", async () => {
  const store = await filled();
  const c = cache(store);
  c.prefetch([SLOT]);
  const other = "c".repeat(64);
  const found = await c.lookup(other, undefined, SLOT);
  assert.deepEqual(found, { hit: false, reason: "absent" });
  assert.equal(store.reads.get(other), 1);
  assert.deepEqual(await c.explain(SLOT, { instruction: "y" }), ["the instruction text changed"]);
  assert.equal(store.reads.get(slotTag(SLOT)), 1);
});

test("an expired latest entry is not used; the key read decides", async () => {
  const store = await filled();
  const c = cache(store, 0);
  const found = await c.lookup(KEY, undefined, SLOT);
  assert.deepEqual(found, { hit: false, reason: "expired" });
  assert.equal(store.reads.get(KEY), 1);
});

test("a failing position read counts as no entry and the key is still looked up", async () => {
  const store = await filled();
  const failing: CacheStore = {
    description: "flaky",
    read: async (tag) => {
      if (tag.startsWith("slot-")) throw new Error("boom");
      return store.read(tag);
    },
    write: async () => undefined,
  };
  const c = cache(failing);
  c.prefetch([SLOT]);
  assert.equal((await c.lookup(KEY, undefined, SLOT)).hit, true);
  assert.equal(store.reads.get(KEY), 1);
});
