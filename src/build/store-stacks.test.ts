import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import type { Digest } from "../image/digest.js";
import type { Layer } from "../image/types.js";
import type { BuildEvent } from "./events.js";
import { LayerStore } from "../fs/index.js";
import { buildTar } from "../fs/test-helpers.js";
import { stackPreparer } from "./store-stacks.js";

/** A layer (real diffID) holding `files`; counts how often its content is opened. */
async function fileLayer(files: Record<string, string>): Promise<Layer & { opens: number }> {
  const tar = await buildTar(Object.entries(files).map(([name, body]) => ({ name, body, mode: 0o644 })));
  const diffId = `sha256:${createHash("sha256").update(tar).digest("hex")}` as Digest;
  const layer = {
    mediaType: "application/vnd.oci.image.layer.v1.tar",
    digest: diffId,
    diffId,
    size: tar.length,
    opens: 0,
    openCompressed: () => Promise.reject(new Error("not used")),
    openUncompressed: () => {
      layer.opens++;
      return Promise.resolve(Readable.from([tar]));
    },
  };
  return layer;
}

/** Stack index files per entry (hex prefix → file names), and the store's leftover tmp entries. */
async function storeState(store: LayerStore): Promise<{ stacks: Record<string, string[]>; tmp: string[] }> {
  const stacks: Record<string, string[]> = {};
  for (const hex of await readdir(store.layersDir)) {
    const files = await readdir(path.join(store.layersDir, hex, "stacks")).catch(() => [] as string[]);
    stacks[hex.slice(0, 12)] = files.sort();
  }
  return { stacks, tmp: await readdir(store.tmpDir) };
}

const hexOf = (l: Layer): string => l.diffId.slice(7, 19);

test("stack indexes of stored layers are prepared one at a time; unstored layers are never extracted", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-stacks-"));
  try {
    const store = await LayerStore.open(path.join(dir, "store"), { maxBytes: 1 << 30 });
    const [a, b, c, d] = await Promise.all([
      fileLayer({ a: "a" }),
      fileLayer({ b: "b" }),
      fileLayer({ c: "c" }),
      fileLayer({ d: "d" }),
    ]);
    if (!a || !b || !c || !d) throw new Error("unreachable");
    const events: BuildEvent[] = [];
    const stacks = stackPreparer(store, (e) => events.push(e));
    // a is stored by an earlier build (found by lookup), b by this one (remembered).
    await store.acquire(a.diffId, () => a.openUncompressed());
    const other = await LayerStore.open(store.dir, { maxBytes: 1 << 30 });
    stacks.stored(await store.acquire(b.diffId, () => b.openUncompressed()));
    await other.acquire(d.diffId, () => d.openUncompressed());
    const opened = { a: a.opens, b: b.opens };

    let publishDone = (): void => undefined;
    const published = new Promise<boolean>((resolve) => (publishDone = () => resolve(true)));
    stacks.prepare([a, b], published, undefined);
    stacks.prepare([a, b, c, d], Promise.resolve(true)); // c is not stored
    stacks.prepare([a], Promise.resolve(true)); // one layer: its own index, nothing to prepare
    stacks.prepare([a, d], Promise.resolve(false)); // the build does not mount from the store
    const aborted = new AbortController();
    aborted.abort();
    stacks.prepare([d, a], Promise.resolve(true), aborted.signal);
    // Nothing runs before the first stack's layers are published (the queue keeps its order).
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual((await storeState(store)).stacks[hexOf(b)], []);
    publishDone();
    await stacks.settled();

    const state = await storeState(store);
    assert.equal(state.stacks[hexOf(b)]?.length, 1, "the stack [a, b] is kept in b's entry");
    assert.ok(state.stacks[hexOf(b)]?.[0]?.endsWith(".bin"));
    assert.deepEqual(state.stacks[hexOf(a)], []);
    assert.deepEqual(state.stacks[hexOf(d)], [], "skipped stacks: no [a, b, c, d], [a, d] nor [d, a]");
    assert.equal(state.stacks[hexOf(c)], undefined, "c was not extracted");
    assert.deepEqual(state.tmp, [], "no partial entry is left");
    assert.equal(c.opens, 0);
    assert.deepEqual({ a: a.opens, b: b.opens }, opened, "stored layers are not read again");
    assert.ok(!events.some((e) => e.kind === "warning"));
    const debug = events.flatMap((e) => (e.kind === "debug" ? [e.message] : []));
    assert.equal(debug.filter((m) => /stack index of 2 layers up to sha256:\w+ prepared/.test(m)).length, 1);
    assert.ok(debug.some((m) => m.includes(`${c.diffId} is not stored`)));

    // A later build mounting [a, b] loads that very stack: stackIndex writes no new file.
    const later = await LayerStore.open(store.dir, { maxBytes: 1 << 30 });
    const entries = [await later.acquire(a.diffId, () => a.openUncompressed())];
    entries.push(await later.acquire(b.diffId, () => b.openUncompressed()));
    const cols = await later.stackIndex(entries);
    assert.ok(cols.find("/a") >= 0 && cols.find("/b") >= 0);
    assert.deepEqual((await storeState(later)).stacks, state.stacks);
    for (const s of [store, other, later]) await s.release();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a layer whose stored index is damaged skips the stack and keeps its entry (it may be mounted)", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-stacks-"));
  try {
    const store = await LayerStore.open(path.join(dir, "store"), { maxBytes: 1 << 30 });
    const a = await fileLayer({ a: "a" });
    const b = await fileLayer({ b: "b" });
    await store.acquire(a.diffId, () => a.openUncompressed());
    await store.acquire(b.diffId, () => b.openUncompressed());
    const indexFile = path.join(store.layersDir, a.diffId.slice(7), "index.bin");
    const data = await readFile(indexFile);
    data.writeUInt8(data.readUInt8(data.length - 1) ^ 0xff, data.length - 1);
    await writeFile(indexFile, data);
    const events: BuildEvent[] = [];
    const stacks = stackPreparer(store, (e) => events.push(e));
    stacks.prepare([a, b], Promise.resolve(true));
    await stacks.settled();
    const state = await storeState(store);
    assert.deepEqual(state.stacks[hexOf(b)], []);
    assert.deepEqual(state.stacks[hexOf(a)], [], "a's entry is still there");
    assert.ok(events.some((e) => e.kind === "debug" && /no stack index prepared for 2 layers/.test(e.message)));
    assert.ok(!events.some((e) => e.kind === "warning"));
    await store.release();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
