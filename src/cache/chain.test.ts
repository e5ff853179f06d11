import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { spoolLayer, type Digest, type Image, type Layer } from "../image/index.js";
import { CHAIN_ANNOTATION, chainFromAnnotations, chainImage, chainTag } from "./chain.js";
import { DirCacheStore } from "./dir-store.js";
import type { CacheRecord, EntryHead } from "./entry.js";
import { LayerCache, slotTag } from "./layer-cache.js";
import { OciLayoutCacheStore } from "./layout-store.js";
import type { CacheStore } from "./store.js";

const platform = { os: "linux", architecture: "amd64" };
const slots = ["1", "2", "3"].map((c) => c.repeat(64));
const keys = ["a", "b", "c"].map((c) => c.repeat(64));

/** An in-memory store keeping chains, counting reads and writes per tag. */
class MemStore implements CacheStore {
  readonly description = "mem";
  readonly keepsChains: boolean;
  readonly images = new Map<string, Image>();
  readonly reads: string[] = [];
  readonly writes: string[] = [];
  constructor(keepsChains = true) {
    this.keepsChains = keepsChains;
  }
  async read(tag: string): Promise<Image | undefined> {
    this.reads.push(tag);
    return this.images.get(tag);
  }
  async write(tag: string, image: Image): Promise<void> {
    this.writes.push(tag);
    this.images.set(tag, image);
  }
  reset(): void {
    this.reads.splice(0);
    this.writes.splice(0);
  }
}

function fakeLayer(n: number): Layer {
  const hex = String(n).repeat(64).slice(0, 64);
  return {
    mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
    digest: `sha256:${hex.replace(/./, "d")}` as Digest,
    diffId: `sha256:${hex.replace(/./, "e")}` as Digest,
    size: 10 + n,
    openCompressed: () => Promise.reject(new Error("not opened in these tests")),
    openUncompressed: () => Promise.reject(new Error("not opened in these tests")),
  };
}

function record(i: number, key = keys[i]!): CacheRecord {
  return { key, slot: slots[i]!, inputs: { instruction: `i${i}`, "arg:V": key.slice(0, 4) }, createdBy: `RUN ${i}` };
}

function cache(store: CacheStore, now: () => Date = () => new Date(100_000), ttlMs = 3_600_000, write = true) {
  const warnings: string[] = [];
  const c = new LayerCache({ store, platform, ttlMs, write, now, onWarning: (m) => warnings.push(m) });
  return { c, warnings };
}

/** A first build of the three steps: every lookup misses, every step writes an entry, then the chain. */
async function firstBuild(store: MemStore, now: () => Date = () => new Date(100_000)): Promise<void> {
  const { c, warnings } = cache(store, now);
  c.prefetch(slots);
  for (let i = 0; i < 3; i++) {
    assert.equal((await c.lookup(keys[i]!, undefined, slots[i])).hit, false);
    c.put(record(i), i === 1 ? undefined : fakeLayer(i));
  }
  c.commitStage(slots);
  await c.flush();
  assert.deepEqual(warnings, []);
}

test("chain tags are distinct from key and slot tags and depend on the stage's ordered positions and the platform", () => {
  const t = chainTag(slots, platform);
  assert.match(t, /^chain-[0-9a-f]{64}$/);
  assert.notEqual(t, chainTag([...slots].reverse(), platform));
  assert.notEqual(t, chainTag(slots.slice(0, 2), platform));
  // Framing: joining positions differently never gives the same tag.
  assert.notEqual(chainTag(["ab", "c"], platform), chainTag(["a", "bc"], platform));
  assert.notEqual(t, chainTag(slots, { ...platform, architecture: "arm64" }));
});

test("a chain round-trips its entries: records, creation times, shared layers, positions without entry", () => {
  const l = fakeLayer(4);
  const entries = new Map<string, EntryHead | undefined>([
    [slots[0]!, { entry: { layer: l, record: record(0), created: new Date(1000) }, inputsComplete: true }],
    [slots[1]!, { entry: { layer: l, record: record(1), created: new Date(2000) }, inputsComplete: false }],
    [slots[2]!, undefined],
  ]);
  const img = chainImage(slots, entries, platform);
  assert.equal(img.manifest.layers.length, 1, "one layer listed once");
  assert.equal(img.config.rootfs.diff_ids[0], l.diffId);
  const got = chainFromAnnotations(img.manifest.annotations, img.layers.length, (i, diffId) => {
    assert.equal(i, 0);
    assert.equal(diffId, l.diffId);
    return l;
  });
  assert.ok(got);
  assert.deepEqual([...got.keys()], slots);
  assert.deepEqual(got.get(slots[0]!), entries.get(slots[0]!));
  const second = got.get(slots[1]!);
  assert.equal(second?.inputsComplete, false);
  assert.deepEqual(second?.entry.record.inputs, {});
  assert.equal(second?.entry.created.getTime(), 2000);
  assert.equal(got.has(slots[2]!), true);
  assert.equal(got.get(slots[2]!), undefined);
});

test("unusable chains and entries: not kiln's, another version, a record naming another position, a bad layer index", () => {
  const noLayer = (): Layer => assert.fail("no layer expected");
  assert.equal(chainFromAnnotations(undefined, 0, noLayer), undefined);
  assert.equal(chainFromAnnotations({ [CHAIN_ANNOTATION]: "{" }, 0, noLayer), undefined);
  assert.equal(chainFromAnnotations({ [CHAIN_ANNOTATION]: '{"v":2,"slots":[]}' }, 0, noLayer), undefined);
  const created = new Date(0).toISOString();
  const text = JSON.stringify({
    v: 1,
    slots: [
      { slot: slots[0], entry: { record: record(1), created } }, // the record belongs to slot 2
      { slot: slots[1], entry: { record: record(1), created, layer: 3, diffId: fakeLayer(1).diffId } },
      { slot: slots[2], entry: { record: record(2), created: "yesterday" } },
    ],
  });
  const got = chainFromAnnotations({ [CHAIN_ANNOTATION]: text }, 1, noLayer);
  assert.ok(got);
  assert.equal(got.size, 0, "no position is covered: each is read on its own");
});

test("a rebuild reads one chain instead of a position each, hits every step and writes nothing", async () => {
  const store = new MemStore();
  await firstBuild(store);
  assert.deepEqual(
    store.writes.filter((t) => t.startsWith("chain-")),
    [chainTag(slots, platform)],
  );
  store.reset();

  const { c } = cache(store, () => new Date(200_000));
  c.prefetch(slots);
  c.prefetch([...slots]); // as build() and then the stage itself do: the chain is still read once
  for (let i = 0; i < 3; i++) {
    const found = await c.lookup(keys[i]!, undefined, slots[i]);
    assert.equal(found.hit, true);
    // The entry's own creation time, not the chain's or the rebuild's.
    if (found.hit) assert.equal(found.entry.created.getTime(), 100_000);
  }
  c.commitStage(slots);
  await c.flush();
  assert.deepEqual(store.reads, [chainTag(slots, platform)]);
  assert.deepEqual(store.writes, []);
});

test("positions the chain does not cover are read one by one; the chain is then rewritten to cover them", async () => {
  const store = new MemStore();
  await firstBuild(store);
  const longer = [...slots, "4".repeat(64)];
  // Another stage shape: its own chain tag is absent, so each position is read (as without chains).
  store.reset();
  const { c } = cache(store);
  c.prefetch(longer);
  assert.equal((await c.lookup(keys[0]!, undefined, slots[0])).hit, true);
  assert.deepEqual(store.reads.sort(), [chainTag(longer, platform), ...longer.map(slotTag)].sort());
  c.commitStage(longer);
  await c.flush();
  assert.deepEqual(store.writes, [chainTag(longer, platform)]);
});

test("a step whose key changed misses, later steps miss, and the new chain records old and new entries", async () => {
  const store = new MemStore();
  await firstBuild(store);
  store.reset();
  const changed = "f".repeat(64);
  const { c } = cache(store, () => new Date(300_000));
  c.prefetch(slots);
  assert.equal((await c.lookup(keys[0]!, undefined, slots[0])).hit, true);
  const miss = await c.lookup(changed, undefined, slots[1]);
  assert.deepEqual(miss, { hit: false, reason: "absent" });
  assert.deepEqual(await c.explain(slots[1]!, { ...record(1).inputs, "arg:V": "ffff" }), ["build arg V changed"]);
  c.put(record(1, changed), fakeLayer(7));
  c.commitStage(slots);
  await c.flush();
  assert.deepEqual(store.reads, [chainTag(slots, platform), changed]);
  assert.deepEqual(store.writes, [changed, slotTag(slots[1]!), chainTag(slots, platform)]);

  // The rewritten chain: the carried entry keeps its creation time, the new one is dated now, the
  // step not looked up this time (slot 3) is recorded without an entry.
  const img = store.images.get(chainTag(slots, platform))!;
  const got = chainFromAnnotations(img.manifest.annotations, img.layers.length, (i) => img.layers[i]!)!;
  assert.equal(got.get(slots[0]!)?.entry.created.getTime(), 100_000);
  assert.equal(got.get(slots[1]!)?.entry.record.key, changed);
  assert.equal(got.get(slots[1]!)?.entry.created.getTime(), 300_000);
  assert.equal(got.get(slots[1]!)?.entry.layer?.digest, fakeLayer(7).digest);
  assert.equal(got.has(slots[2]!), true);
  assert.equal(got.get(slots[2]!), undefined);
});

test("a foreign or stale chain never gives a wrong hit: a key it does not name is read itself", async () => {
  const store = new MemStore();
  await firstBuild(store);
  // Another Dockerfile with the same positions overwrote the chain with entries for other keys.
  const foreign = new Map<string, EntryHead | undefined>(
    slots.map((s, i) => [
      s,
      {
        entry: { layer: undefined, record: record(i, "9".repeat(64)), created: new Date(150_000) },
        inputsComplete: true,
      },
    ]),
  );
  store.images.set(chainTag(slots, platform), chainImage(slots, foreign, platform));
  store.reset();
  const { c } = cache(store);
  c.prefetch(slots);
  assert.equal((await c.lookup("9".repeat(64), undefined, slots[0])).hit, true, "the chain's own key hits");
  const own = await c.lookup(keys[1]!, undefined, slots[1]);
  assert.equal(own.hit, true);
  if (own.hit) assert.equal(own.entry.record.key, keys[1]);
  const absent = await c.lookup("8".repeat(64), undefined, slots[2]);
  assert.deepEqual(absent, { hit: false, reason: "absent" });
  assert.deepEqual(store.reads, [chainTag(slots, platform), keys[1], "8".repeat(64)]);
});

test("TTL counts from each entry's creation, also when the chain was written later", async () => {
  const store = new MemStore();
  await firstBuild(store, () => new Date(0));
  // A later build hits step 1 from the chain and rewrites it (step 2 changed).
  {
    const { c } = cache(store, () => new Date(50_000), 60_000);
    c.prefetch(slots);
    assert.equal((await c.lookup(keys[0]!, undefined, slots[0])).hit, true);
    c.put(record(1, "f".repeat(64)), undefined);
    c.commitStage(slots);
    await c.flush();
  }
  const { c } = cache(store, () => new Date(70_000), 60_000);
  c.prefetch(slots);
  assert.deepEqual(await c.lookup(keys[0]!, undefined, slots[0]), { hit: false, reason: "expired" });
  assert.equal((await c.lookup("f".repeat(64), undefined, slots[1])).hit, true);
});

test("no chain is written with --no-push-cache, nor into a store that keeps none (read per position)", async () => {
  const store = new MemStore();
  const { c } = cache(store, undefined, undefined, false);
  c.prefetch(slots);
  c.put(record(0), undefined);
  c.commitStage(slots);
  await c.flush();
  assert.deepEqual(store.writes, []);

  const plain = new MemStore(false);
  await firstBuild(plain);
  assert.ok(!plain.writes.some((t) => t.startsWith("chain-")));
  plain.reset();
  const r = cache(plain);
  r.c.prefetch(slots);
  assert.equal((await r.c.lookup(keys[0]!, undefined, slots[0])).hit, true);
  assert.deepEqual(plain.reads.sort(), slots.map(slotTag).sort());
});

test("a failing chain read is a miss of the chain: positions are read one by one", async () => {
  const store = new MemStore();
  await firstBuild(store);
  store.reset();
  const flaky: CacheStore = {
    description: "flaky",
    keepsChains: true,
    read: async (tag) => {
      if (tag.startsWith("chain-")) throw new Error("boom");
      return store.read(tag);
    },
    write: (tag, image) => store.write(tag, image),
  };
  const { c, warnings } = cache(flaky);
  c.prefetch(slots);
  for (let i = 0; i < 3; i++) assert.equal((await c.lookup(keys[i]!, undefined, slots[i])).hit, true);
  assert.deepEqual(store.reads.sort(), slots.map(slotTag).sort());
  // The chain could not be read, so it is written again (the hits are the same entries).
  c.commitStage(slots);
  await c.flush();
  assert.deepEqual(store.writes, [chainTag(slots, platform)]);
  assert.deepEqual(warnings, []);
});

async function realLayer(dir: string, text: string): Promise<Layer> {
  // Not a real tar; the stores treat layers as opaque blobs.
  return spoolLayer(Readable.from([Buffer.from(text)]), {
    dir,
    compression: "gzip",
    mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
  });
}

test("dir store: the chain shares the entries' blobs and a rebuild hits with one chain read; an OCI layout keeps none", async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), "kiln-chain-test-"));
  try {
    const layers = [await realLayer(d, "zero"), await realLayer(d, "one"), await realLayer(d, "two")];
    const stores: CacheStore[] = [new DirCacheStore(path.join(d, "dir")), new OciLayoutCacheStore(path.join(d, "oci"))];
    for (const store of stores) {
      const w = cache(store);
      w.c.prefetch(slots);
      for (let i = 0; i < 3; i++) w.c.put(record(i), layers[i]);
      w.c.commitStage(slots);
      await w.c.flush();
      assert.deepEqual(w.warnings, []);

      const reads: string[] = [];
      const counting: CacheStore = {
        description: store.description,
        ...(store.keepsChains ? { keepsChains: true } : {}),
        read: (tag) => {
          reads.push(tag);
          return store.read(tag);
        },
        write: (tag, image) => store.write(tag, image),
      };
      const r = cache(counting);
      r.c.prefetch(slots);
      for (let i = 0; i < 3; i++) {
        const found = await r.c.lookup(keys[i]!, undefined, slots[i]);
        assert.equal(found.hit, true);
        if (found.hit) assert.equal(found.entry.layer?.diffId, layers[i]!.diffId);
      }
      if (store instanceof DirCacheStore) {
        assert.deepEqual(reads, [chainTag(slots, platform)]);
        assert.equal((await readdir(path.join(d, "dir", "blobs", "sha256"))).length, 3 * 3 + 2);
      } else {
        assert.deepEqual(reads.sort(), slots.map(slotTag).sort());
        assert.ok(!(await readdir(d)).some((n) => n.includes("chain-")));
      }
    }
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});

test("inputs too large for the chain are left out; explaining a miss then reads the entry under its key", async () => {
  const store = new MemStore();
  const big: Record<string, string> = {};
  for (let n = 0; n < 1000; n++) big[`file:src/f${n}.txt`] = n.toString(16).padStart(16, "0");
  {
    const { c } = cache(store);
    c.prefetch(slots.slice(0, 1));
    c.put({ ...record(0), inputs: big }, undefined);
    c.commitStage(slots.slice(0, 1));
    await c.flush();
  }
  store.reset();
  const { c } = cache(store);
  c.prefetch(slots.slice(0, 1));
  assert.deepEqual(await c.lookup("f".repeat(64), undefined, slots[0]), { hit: false, reason: "absent" });
  const diff = await c.explain(slots[0]!, { ...big, "file:src/f7.txt": "changed" });
  assert.deepEqual(diff, ["file src/f7.txt changed"]);
  assert.deepEqual(store.reads, [chainTag(slots.slice(0, 1), platform), "f".repeat(64), keys[0]]);
});

test("a chain too large for a registry manifest is not written; the positions are then read one by one", async () => {
  const store = new MemStore();
  const { c, warnings } = cache(store);
  c.prefetch(slots);
  for (let i = 0; i < 3; i++) c.put({ ...record(i), createdBy: `RUN ${"x".repeat(1024 * 1024)}` }, undefined);
  c.commitStage(slots);
  await c.flush();
  assert.ok(!store.writes.some((t) => t.startsWith("chain-")));
  assert.deepEqual(warnings, []);
});
