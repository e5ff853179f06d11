import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { lstat, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath, pathToFileURL } from "node:url";
import { assertCode, buildTar, isRoot, type Spec } from "../test-helpers.js";
import { FileIndex } from "../file-index.js";
import { rebuildFileIndex } from "./layer-index.js";
import { LayerStore } from "./layer-store.js";
import { parseSize } from "./parse-size.js";

interface TestLayer {
  diffId: string;
  open: () => Promise<Readable>;
}

async function layerOf(specs: readonly Spec[]): Promise<TestLayer> {
  const tar = await buildTar(specs);
  return {
    diffId: `sha256:${createHash("sha256").update(tar).digest("hex")}`,
    open: () => Promise.resolve(Readable.from([tar])),
  };
}

async function withStore(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-store-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const BIG = 2 ** 40;
const hexOf = (d: string): string => d.slice("sha256:".length);

/** A pid that is certainly dead: a child that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

test("a miss extracts, verifies and publishes atomically; the next acquire is a hit", async () => {
  await withStore(async (dir) => {
    const layer = await layerOf([
      { name: "etc/", type: "dir", mode: 0o755 },
      { name: "etc/hello", body: "hello\n", mode: 0o644 },
      { name: "bin/sh", type: "symlink", linkname: "busybox" },
    ]);
    const store = await LayerStore.open(dir, { maxBytes: BIG });
    const first = await store.acquire(layer.diffId, layer.open);
    assert.equal(first.hit, false);
    assert.equal(await readFile(path.join(first.tree, "etc/hello"), "utf8"), "hello\n");
    assert.deepEqual((await readdir(first.dir)).sort(), ["index.bin", "meta.json", "tree"]);
    assert.deepEqual(await readdir(path.join(dir, "tmp")), [], "nothing left in tmp/");
    const meta = JSON.parse(await readFile(path.join(first.dir, "meta.json"), "utf8")) as Record<string, unknown>;
    assert.equal(meta.diffId, layer.diffId);
    assert.equal(meta.files, 1);
    assert.ok(first.index.entries.has("/etc/hello") && first.index.entries.has("/bin/sh"));
    // Size accounting: 1 file rounded to 4 KiB, 2 dirs (etc, bin — implicit), plus the index.
    const indexLen = (await readFile(path.join(first.dir, "index.bin"))).length;
    assert.equal(first.bytes, 4096 + 2 * 4096 + indexLen);
    assert.deepEqual(await store.usage(), { entries: 1, bytes: first.bytes });
    assert.deepEqual(first.index.implicitDirs, ["/bin"]);
    let opened = 0;
    const again = await store.acquire(layer.diffId, () => {
      opened++;
      return layer.open();
    });
    assert.equal(again.hit, true);
    assert.equal(opened, 0, "a hit never opens the layer");
    await store.release();
    assert.deepEqual(await readdir(path.join(dir, "leases", hexOf(layer.diffId))), []);
  });
});

test("lookup leases a stored entry and extracts nothing; a layer not stored leaves no lease behind", async () => {
  await withStore(async (dir) => {
    const layer = await layerOf([{ name: "etc/hello", body: "hello\n" }]);
    const store = await LayerStore.open(dir, { maxBytes: BIG });
    assert.equal(await store.lookup(layer.diffId), undefined);
    assert.equal(await store.lookup("sha512:00"), undefined);
    assert.deepEqual(await readdir(path.join(dir, "layers", "sha256")), [], "nothing extracted");
    assert.deepEqual(await readdir(path.join(dir, "leases")), [], "no lease left");
    await store.acquire(layer.diffId, layer.open);
    const other = await LayerStore.open(dir, { maxBytes: BIG });
    const found = await other.lookup(layer.diffId);
    assert.equal(found?.hit, true);
    assert.equal(found?.diffId, layer.diffId);
    assert.equal((await readdir(path.join(dir, "leases", hexOf(layer.diffId)))).length, 2, "both leases held");
    await other.release();
    await store.release();
  });
});

test("a stream whose sha256 is not the diffID is refused and nothing is published", async () => {
  await withStore(async (dir) => {
    const layer = await layerOf([{ name: "a", body: "a" }]);
    const wrong = `sha256:${"ab".repeat(32)}`;
    const store = await LayerStore.open(dir, { maxBytes: BIG });
    await assertCode(store.acquire(wrong, layer.open), "LAYER_STORE_DIGEST");
    assert.deepEqual(await readdir(path.join(dir, "layers", "sha256")), []);
    assert.deepEqual(await readdir(path.join(dir, "tmp")), []);
    await assertCode(store.acquire("sha512:00", layer.open), "LAYER_STORE");
  });
});

test("a damaged entry (index digest mismatch, missing or invalid meta.json) is rebuilt", async () => {
  await withStore(async (dir) => {
    const layer = await layerOf([{ name: "f", body: "content" }]);
    const notes: string[] = [];
    const store = await LayerStore.open(dir, { maxBytes: BIG, onNote: (m) => notes.push(m) });
    const e = await store.acquire(layer.diffId, layer.open);
    // A damaged index is found when it is first read (a hit reads it lazily); the entry is then deleted.
    await writeFile(path.join(e.dir, "index.bin"), '{"version":1}');
    await store.release(); // damage is repaired only when no other stage of the build holds the entry
    const lazy = await store.acquire(layer.diffId, layer.open);
    assert.equal(lazy.hit, true);
    await assertCode(store.stackIndex([lazy]), "LAYER_STORE_DAMAGED");
    assert.equal((await store.acquire(layer.diffId, layer.open)).hit, false, "re-extracted");
    const damage = [
      () => rm(path.join(e.dir, "meta.json")),
      () => writeFile(path.join(e.dir, "meta.json"), "{not json"),
      () => rm(path.join(e.dir, "tree"), { recursive: true }),
    ];
    for (const d of damage) {
      await store.release();
      await d();
      const again = await store.acquire(layer.diffId, layer.open);
      assert.equal(again.hit, false, "re-extracted");
      assert.equal(await readFile(path.join(again.tree, "f"), "utf8"), "content");
    }
    assert.equal(notes.filter((n) => n.includes("damaged")).length, damage.length + 1);
  });
});

test("leftovers of crashed processes (tmp dirs, leases) are removed when the store opens", async () => {
  await withStore(async (dir) => {
    const dead = deadPid();
    const store = await LayerStore.open(dir, { maxBytes: BIG });
    void store;
    const half = path.join(dir, "tmp", `${dead}-abcdef-0123`);
    await mkdir(path.join(half, "tree", "usr"), { recursive: true });
    const live = path.join(dir, "tmp", `${process.pid}-mine`);
    await mkdir(live);
    await writeFile(path.join(dir, "tmp", ".kiln-spread"), ""); // hidden: not the store's
    await mkdir(path.join(dir, "leases", "ff".repeat(32)), { recursive: true });
    await writeFile(path.join(dir, "leases", "ff".repeat(32), `${dead}-x`), "");
    await LayerStore.open(dir, { maxBytes: BIG });
    assert.deepEqual((await readdir(path.join(dir, "tmp"))).sort(), [".kiln-spread", `${process.pid}-mine`]);
    assert.deepEqual(await readdir(path.join(dir, "leases")), []);
  });
});

test("eviction removes least-recently-used entries down to the limit and skips leased ones", async () => {
  await withStore(async (dir) => {
    const layers = await Promise.all([1, 2, 3].map((i) => layerOf([{ name: `f${i}`, body: "x".repeat(10000 * i) }])));
    let clock = Date.parse("2026-01-01T00:00:00Z");
    const now = (): Date => new Date((clock += 1000));
    const holder = await LayerStore.open(dir, { maxBytes: BIG, now });
    const other = await LayerStore.open(dir, { maxBytes: BIG, now });
    const e1 = await holder.acquire(layers[0]!.diffId, layers[0]!.open); // oldest, but stays leased
    const e2 = await other.acquire(layers[1]!.diffId, layers[1]!.open);
    const e3 = await other.acquire(layers[2]!.diffId, layers[2]!.open);
    await other.release();
    const total = e1.bytes + e2.bytes + e3.bytes;
    assert.deepEqual(await other.usage(), { entries: 3, bytes: total });
    const r = await other.evict(e1.bytes + e3.bytes);
    assert.deepEqual(r.evicted, [e2.diffId], "the oldest unleased entry goes; the leased one stays");
    assert.equal(r.bytes, e2.bytes);
    assert.equal((await other.usage()).bytes, e1.bytes + e3.bytes);
    const r2 = await other.evict(0);
    assert.deepEqual(r2.evicted, [e3.diffId]);
    assert.ok((await lstat(e1.tree)).isDirectory(), "leased entry kept");
    await holder.release();
    assert.deepEqual((await other.evict(0)).evicted, [e1.diffId]);
    assert.deepEqual(await other.usage(), { entries: 0, bytes: 0 });
  });
});

test("publishing evicts down to --layer-store-max-size", async () => {
  await withStore(async (dir) => {
    const a = await layerOf([{ name: "a", body: "a".repeat(50000) }]);
    const b = await layerOf([{ name: "b", body: "b".repeat(50000) }]);
    const s1 = await LayerStore.open(dir, { maxBytes: 100000 });
    await s1.acquire(a.diffId, a.open);
    await s1.release();
    const s2 = await LayerStore.open(dir, { maxBytes: 100000 });
    await s2.acquire(b.diffId, b.open);
    assert.deepEqual(await readdir(path.join(dir, "layers", "sha256")), [hexOf(b.diffId)]);
  });
});

test("whiteouts become overlay whiteouts and opaque markers trusted.overlay.opaque", { skip: !isRoot() }, async () => {
  await withStore(async (dir) => {
    const layer = await layerOf([
      { name: "etc/", type: "dir", mode: 0o755 },
      { name: "etc/.wh.motd", body: "" },
      { name: "var/", type: "dir", mode: 0o700 },
      { name: "var/.wh..wh..opq", body: "" },
      { name: "var/new", body: "n" },
    ]);
    const store = await LayerStore.open(dir, { maxBytes: BIG });
    const e = await store.acquire(layer.diffId, layer.open);
    const wh = await lstat(path.join(e.tree, "etc/motd"));
    assert.ok(wh.isCharacterDevice() && wh.rdev === 0, "0/0 character device");
    const opq = execFileSync("getfattr", [
      "--absolute-names",
      "--only-values",
      "-n",
      "trusted.overlay.opaque",
      path.join(e.tree, "var"),
    ]);
    assert.equal(opq.toString(), "y");
    assert.deepEqual(e.index.whiteouts, ["/etc/motd"]);
    assert.deepEqual(e.index.opaqueDirs, ["/var"]);
    assert.ok(!e.index.entries.has("/etc/motd"), "whiteout nodes are not index entries");
    assert.equal(e.index.entries.get("/var")?.mode, 0o700);
  });
});

test("parseSize", () => {
  assert.equal(parseSize("20GiB"), 20 * 1024 ** 3);
  assert.equal(parseSize("500MB"), 500_000_000);
  assert.equal(parseSize("1.5g"), 1.5 * 1024 ** 3);
  assert.equal(parseSize("4096"), 4096);
  assert.throws(() => parseSize("lots"), /invalid size/);
  assert.throws(() => parseSize("5 parsecs"), /invalid size/);
});

test("when another process publishes the same layer first, the second copy is discarded", async () => {
  await withStore(async (dir) => {
    const layer = await layerOf([{ name: "f", body: "same" }]);
    const a = await LayerStore.open(dir, { maxBytes: BIG });
    const b = await LayerStore.open(dir, { maxBytes: BIG });
    let bResult: Awaited<ReturnType<LayerStore["acquire"]>> | undefined;
    const aResult = await a.acquire(layer.diffId, async () => {
      bResult = await b.acquire(layer.diffId, layer.open); // b wins the race while a is extracting
      return layer.open();
    });
    assert.equal(bResult?.hit, false);
    assert.equal(aResult.hit, true, "a uses b's published entry");
    assert.equal(aResult.dir, bResult?.dir);
    assert.deepEqual(await readdir(path.join(dir, "tmp")), []);
    assert.deepEqual(await readdir(path.join(dir, "layers", "sha256")), [hexOf(layer.diffId)]);
  });
});

test("a stack index is the merged view of its layers, stored once, verified and rebuilt when damaged", async () => {
  await withStore(async (dir) => {
    const lower = await layerOf([
      { name: "etc/", type: "dir", mode: 0o700, uid: 5 },
      { name: "etc/motd", body: "hi" },
      { name: "etc/keep", body: "k" },
      { name: "var/", type: "dir", mode: 0o755 },
      { name: "var/old", body: "o" },
      { name: "bin/sh", type: "symlink", linkname: "busybox" },
    ]);
    const upper = await layerOf([
      { name: "etc/.wh.motd", body: "" },
      { name: "var/", type: "dir", mode: 0o750 },
      { name: "var/.wh..wh..opq", body: "" },
      { name: "var/new", body: "n" },
      { name: "etc/sub/x", body: "implied parent of an implied dir" },
    ]);
    const notes: string[] = [];
    const store = await LayerStore.open(dir, { maxBytes: BIG, onNote: (m) => notes.push(m) });
    const layers = [await store.acquire(lower.diffId, lower.open), await store.acquire(upper.diffId, upper.open)];
    const expected = rebuildFileIndex(
      layers.map((l) => l.index),
      0,
    );
    const view = (ix: FileIndex): unknown => [...ix.paths()].sort().map((p) => [p, ix.get(p)]);
    const first = await store.stackIndex(layers);
    assert.deepEqual(view(FileIndex.fromBase(first)), view(expected.index));
    assert.deepEqual(first.fixups, [...expected.fixups]);
    assert.ok(
      first.fixups.some(([p]) => p === "/etc"),
      "/etc: implied by the upper layer, real in the lower",
    );
    assert.ok(!FileIndex.fromBase(first).has("/etc/motd") && !FileIndex.fromBase(first).has("/var/old"));
    const stacks = path.join(layers[1]?.dir as string, "stacks");
    const files = await readdir(stacks);
    assert.equal(files.length, 1, "published under the topmost entry");
    const used = await store.usage();
    const recorded = layers.reduce((n, l) => n + l.bytes, 0);
    assert.equal(used.bytes, recorded + first.bytes, "stack indexes count towards the store's size");
    const again = await store.stackIndex(layers);
    assert.deepEqual(view(FileIndex.fromBase(again)), view(expected.index));
    await writeFile(path.join(stacks, files[0] as string), "garbage");
    const rebuilt = await store.stackIndex(layers);
    assert.deepEqual(view(FileIndex.fromBase(rebuilt)), view(expected.index));
    assert.equal(notes.filter((n) => n.includes("stack index") && n.includes("damaged")).length, 1);
    assert.equal((await readFile(path.join(stacks, files[0] as string))).length, rebuilt.bytes, "re-published");
    assert.deepEqual(await readdir(stacks), files, "no temporary files left");
    // One layer: its own index, nothing stored.
    const single = await store.stackIndex([layers[0] as (typeof layers)[0]]);
    assert.equal(single.kind, "layer");
    assert.equal(single.count, layers[0]?.index.entries.size);
    await store.release();
  });
});

test("stack index bytes are recorded as they are written and counted from the record", async () => {
  await withStore(async (dir) => {
    const lower = await layerOf([{ name: "a", body: "a" }]);
    const upper = await layerOf([{ name: "b", body: "b" }]);
    const store = await LayerStore.open(dir, { maxBytes: BIG });
    const layers = [await store.acquire(lower.diffId, lower.open), await store.acquire(upper.diffId, upper.open)];
    const recorded = layers.reduce((n, l) => n + l.bytes, 0);
    assert.deepEqual(await store.usage(), { entries: 2, bytes: recorded }, "no stack index yet");
    const stack = await store.stackIndex(layers);
    const top = layers[1]?.dir as string;
    const [file] = await readdir(path.join(top, "stacks"));
    assert.equal(await readFile(path.join(top, "stack-sizes"), "utf8"), `${file} ${stack.bytes}\n`);
    assert.equal((await store.usage()).bytes, recorded + stack.bytes);
    // The record, not the directory, is counted: an in-place rewrite (which kiln never does) goes unseen,
    // by this instance and by another (another process) alike.
    await writeFile(path.join(top, "stacks", file as string), Buffer.alloc(stack.bytes + 100));
    assert.equal((await store.usage()).bytes, recorded + stack.bytes);
    const other = await LayerStore.open(dir, { maxBytes: BIG });
    assert.equal((await other.usage()).bytes, recorded + stack.bytes);
    // Eviction counts them too: at the total nothing goes, one byte below it an entry does.
    await store.release();
    assert.deepEqual((await other.evict(recorded + stack.bytes)).evicted, []);
    assert.equal((await other.evict(recorded + stack.bytes - 1)).evicted.length, 1);
    const rest = await other.usage();
    assert.equal((await other.evict(0)).bytes, rest.bytes);
    assert.deepEqual(await other.usage(), { entries: 0, bytes: 0 });
  });
});

test("stack indexes written into one entry by concurrent builds are all counted", async () => {
  await withStore(async (dir) => {
    const one = await layerOf([{ name: "one", body: "1" }]);
    const two = await layerOf([{ name: "two", body: "22" }]);
    const top = await layerOf([{ name: "top", body: "t" }]);
    // Two instances: two builds (their leases and records are separate, as in two processes).
    const a = await LayerStore.open(dir, { maxBytes: BIG });
    const b = await LayerStore.open(dir, { maxBytes: BIG });
    const inA = [await a.acquire(one.diffId, one.open), await a.acquire(top.diffId, top.open)];
    const inB = [await b.acquire(two.diffId, two.open), await b.acquire(top.diffId, top.open)];
    const own = [...inA, ...inB.slice(0, 1)].reduce((n, l) => n + l.bytes, 0);
    const [sa, sb] = await Promise.all([a.stackIndex(inA), b.stackIndex(inB)]);
    const topDir = inA[1]?.dir as string;
    assert.equal((await readdir(path.join(topDir, "stacks"))).length, 2, "two stacks in one entry");
    assert.deepEqual(await a.usage(), { entries: 3, bytes: own + sa.bytes + sb.bytes });
    assert.deepEqual(await b.usage(), await a.usage());
    await a.release();
    await b.release();
  });
});

test("an entry whose stack indexes an older kiln wrote (no record) has them listed once and recorded", async () => {
  await withStore(async (dir) => {
    const lower = await layerOf([{ name: "a", body: "a" }]);
    const other = await layerOf([{ name: "c", body: "c" }]);
    const upper = await layerOf([{ name: "b", body: "b" }]);
    const store = await LayerStore.open(dir, { maxBytes: BIG });
    const [l, o, u] = [
      await store.acquire(lower.diffId, lower.open),
      await store.acquire(other.diffId, other.open),
      await store.acquire(upper.diffId, upper.open),
    ];
    const recorded = l.bytes + o.bytes + u.bytes;
    const first = await store.stackIndex([l, u]);
    const record = path.join(u.dir, "stack-sizes");
    await rm(record); // as an older kiln left it
    assert.equal((await store.usage()).bytes, recorded + first.bytes, "counted from a listing");
    const [file] = await readdir(path.join(u.dir, "stacks"));
    assert.equal(await readFile(record, "utf8"), `${file} ${first.bytes}\n`, "and recorded");
    // A stack index written into such an entry records the ones already there along with its own.
    await rm(record);
    const second = await store.stackIndex([o, u]);
    assert.equal((await store.usage()).bytes, recorded + first.bytes + second.bytes);
    assert.equal((await readFile(record, "utf8")).split("\n").length, 3, "two lines");
    await store.release();
  });
});

test("an entry of the older index format is rebuilt", async () => {
  await withStore(async (dir) => {
    const layer = await layerOf([{ name: "f", body: "content" }]);
    const notes: string[] = [];
    const store = await LayerStore.open(dir, { maxBytes: BIG, onNote: (m) => notes.push(m) });
    const e = await store.acquire(layer.diffId, layer.open);
    const meta = JSON.parse(await readFile(path.join(e.dir, "meta.json"), "utf8")) as Record<string, unknown>;
    await writeFile(path.join(e.dir, "meta.json"), JSON.stringify({ ...meta, version: 1 }));
    await store.release(); // an older kiln's entry, found by a later build
    const again = await store.acquire(layer.diffId, layer.open);
    assert.equal(again.hit, false);
    assert.ok(notes.some((n) => n.includes("older format")));
  });
});

test("a lookup racing an acquire of the same entry in one instance keeps the acquire's lease", async () => {
  for (const lookupFirst of [false, true]) {
    await withStore(async (dir) => {
      const layer = await layerOf([{ name: "etc/hello", body: "hello\n" }]);
      // A tiny limit: publishing evicts every entry that is not leased.
      const store = await LayerStore.open(dir, { maxBytes: 1 });
      const acquiring = (): Promise<unknown> => store.acquire(layer.diffId, layer.open);
      const looking = (): Promise<unknown> => store.lookup(layer.diffId);
      // Started in the same tick: the lookup finds nothing stored while the acquire extracts.
      const [first, second] = await Promise.all(lookupFirst ? [looking(), acquiring()] : [acquiring(), looking()]);
      const got = (lookupFirst ? second : first) as Awaited<ReturnType<LayerStore["acquire"]>>;
      assert.equal(got.hit, false);
      assert.equal(lookupFirst ? first : second, undefined, "the lookup found nothing stored");
      assert.equal((await readdir(path.join(dir, "leases", hexOf(layer.diffId)))).length, 1, "acquire's lease held");
      const other = await LayerStore.open(dir, { maxBytes: 1 });
      assert.deepEqual((await other.evict(0)).evicted, [], "a leased entry is not evicted");
      assert.equal(await readFile(path.join(got.tree, "etc/hello"), "utf8"), "hello\n");
      await store.release();
      assert.deepEqual((await other.evict(0)).evicted, [layer.diffId], "evictable once released");
    });
  }
});

test("a lookup that finds nothing undoes only its own hold of a lease other calls share", async () => {
  await withStore(async (dir) => {
    const layer = await layerOf([{ name: "f", body: "f" }]);
    const store = await LayerStore.open(dir, { maxBytes: BIG });
    const e = await store.acquire(layer.diffId, layer.open);
    const absent = `sha256:${"cd".repeat(32)}`;
    assert.equal(await store.lookup(absent), undefined);
    assert.deepEqual(await readdir(path.join(dir, "leases")), [hexOf(layer.diffId)], "no lease of the absent one");
    // Hits and a failing acquire (wrong content) of the held entry leave its lease in place.
    await Promise.all([store.lookup(layer.diffId), store.acquire(layer.diffId, layer.open)]);
    await assertCode(store.acquire(absent, layer.open), "LAYER_STORE_DIGEST");
    assert.equal((await readdir(path.join(dir, "leases", hexOf(layer.diffId)))).length, 1);
    const other = await LayerStore.open(dir, { maxBytes: BIG });
    assert.deepEqual((await other.evict(0)).evicted, []);
    assert.ok((await lstat(e.tree)).isDirectory());
    await store.release();
    assert.deepEqual(await readdir(path.join(dir, "leases", hexOf(layer.diffId))), []);
  });
});

/**
 * Another process that acquires `diffId` from the store at `dir` over and over for `ms` milliseconds
 * (the layer's tar at `tarPath`); resolves with how often it did, how often it had to extract, and
 * its store notes. The child imports this very module (TypeScript through tsx, or the compiled copy).
 */
function acquireLoopChild(
  dir: string,
  tarPath: string,
  diffId: string,
  ms: number,
): { started: Promise<void>; done: Promise<{ loads: number; misses: number; notes: string[] }> } {
  const here = fileURLToPath(import.meta.url);
  const moduleUrl = pathToFileURL(path.join(path.dirname(here), `layer-store${path.extname(here)}`)).href;
  const script = `
    import { createReadStream } from "node:fs";
    import { LayerStore } from ${JSON.stringify(moduleUrl)};
    const [dir, tarPath, diffId, ms] = process.argv.slice(1);
    const notes = [];
    const store = await LayerStore.open(dir, { maxBytes: 2 ** 40, onNote: (m) => notes.push(m) });
    process.stdout.write("started\\n");
    let loads = 0, misses = 0;
    for (const end = Date.now() + Number(ms); Date.now() < end; loads++) {
      if (!(await store.acquire(diffId, () => Promise.resolve(createReadStream(tarPath)))).hit) misses++;
    }
    await store.release();
    process.stdout.write(JSON.stringify({ loads, misses, notes }) + "\\n");`;
  const loader = here.endsWith(".ts") ? ["--import", "tsx"] : [];
  const p = spawn(
    process.execPath,
    [...loader, "--input-type=module", "-e", script, dir, tarPath, diffId, String(ms)],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  let err = "";
  let onStarted: () => void = () => undefined;
  const started = new Promise<void>((r) => (onStarted = r));
  p.stdout.on("data", (d: Buffer) => {
    out += d.toString();
    if (out.includes("started\n")) onStarted();
  });
  p.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const done = new Promise<{ loads: number; misses: number; notes: string[] }>((resolve, reject) =>
    p.on("close", (status) => {
      onStarted();
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (status !== 0 || line === undefined) reject(new Error(`child exited ${status}: ${err}`));
      else resolve(JSON.parse(line) as { loads: number; misses: number; notes: string[] });
    }),
  );
  return { started, done };
}

test("concurrent hits on one entry never let another process's load take it for damaged", async () => {
  await withStore(async (dir) => {
    const tar = await buildTar([{ name: "etc/hello", body: "hello\n" }]);
    const tarPath = path.join(dir, "layer.tar");
    await writeFile(tarPath, tar);
    const layer = {
      diffId: `sha256:${createHash("sha256").update(tar).digest("hex")}`,
      open: () => Promise.resolve(Readable.from([tar])),
    };
    const storeDir = path.join(dir, "store");
    const notes: string[] = [];
    const store = await LayerStore.open(storeDir, { maxBytes: BIG, onNote: (m) => notes.push(m) });
    await store.acquire(layer.diffId, layer.open);
    const child = acquireLoopChild(storeDir, tarPath, layer.diffId, 2000);
    await child.started;
    let running = true;
    void child.done.finally(() => (running = false)).catch(() => undefined);
    let misses = 0;
    // Several stages FROM one base: concurrent hits on one instance, each rewriting meta.json.
    while (running) {
      const got = await Promise.all(Array.from({ length: 4 }, () => store.acquire(layer.diffId, layer.open)));
      misses += got.filter((e) => !e.hit).length;
    }
    const other = await child.done;
    assert.ok(other.loads > 10, `the other process loaded the entry ${other.loads} times`);
    assert.deepEqual(other.notes, [], "the other process never took the entry for damaged");
    assert.equal(other.misses, 0, "nor extracted it again");
    assert.deepEqual(notes, []);
    assert.equal(misses, 0);
    const entry = path.join(storeDir, "layers", "sha256", hexOf(layer.diffId));
    const meta = JSON.parse(await readFile(path.join(entry, "meta.json"), "utf8")) as Record<string, unknown>;
    assert.equal(meta.diffId, layer.diffId);
    assert.deepEqual((await readdir(entry)).sort(), ["index.bin", "meta.json", "tree"], "no temporary meta.json left");
    await store.release();
  });
});

test("a damaged entry another build leases is kept for it; it is rebuilt once released", async () => {
  await withStore(async (dir) => {
    const layer = await layerOf([{ name: "f", body: "content" }]);
    const notes: string[] = [];
    const holder = await LayerStore.open(dir, { maxBytes: BIG });
    const other = await LayerStore.open(dir, { maxBytes: BIG, onNote: (m) => notes.push(m) });
    const held = await holder.acquire(layer.diffId, layer.open);
    const meta = JSON.parse(await readFile(path.join(held.dir, "meta.json"), "utf8")) as Record<string, unknown>;
    await writeFile(path.join(held.dir, "meta.json"), JSON.stringify({ ...meta, diffId: "sha256:other" }));
    await assertCode(other.acquire(layer.diffId, layer.open), "LAYER_STORE_DAMAGED");
    assert.equal(await other.lookup(layer.diffId), undefined);
    assert.equal(await readFile(path.join(held.tree, "f"), "utf8"), "content", "not deleted under its holder");
    assert.ok(notes.some((n) => n.includes("damaged") && n.includes("in use")));
    assert.equal((await readdir(path.join(dir, "leases", hexOf(layer.diffId)))).length, 1, "only the holder's lease");
    // A damaged index found (lazily, by a hit) while building a stack is kept as well.
    await writeFile(path.join(held.dir, "meta.json"), JSON.stringify(meta));
    const hit = await other.acquire(layer.diffId, layer.open);
    assert.equal(hit.hit, true);
    await writeFile(path.join(held.dir, "index.bin"), "damaged");
    await assertCode(other.stackIndex([hit]), "LAYER_STORE_DAMAGED");
    assert.equal(await readFile(path.join(held.tree, "f"), "utf8"), "content", "still not deleted");
    await holder.release();
    await assertCode(other.stackIndex([hit]), "LAYER_STORE_DAMAGED");
    const again = await other.acquire(layer.diffId, layer.open);
    assert.equal(again.hit, false, "rebuilt once nobody else holds it");
    assert.equal(await readFile(path.join(again.tree, "f"), "utf8"), "content");
    await other.release();
  });
});

test("a damaged index found by one stage is kept while another stage of the same build holds the entry", async () => {
  await withStore(async (dir) => {
    const layer = await layerOf([{ name: "f", body: "content" }]);
    const store = await LayerStore.open(dir, { maxBytes: BIG });
    const stageA = await store.acquire(layer.diffId, layer.open); // its overlay has the tree as a lower
    const stageB = await store.acquire(layer.diffId, layer.open);
    await writeFile(path.join(stageB.dir, "index.bin"), "damaged");
    await assertCode(store.stackIndex([stageB]), "LAYER_STORE_DAMAGED");
    assert.equal(await readFile(path.join(stageA.tree, "f"), "utf8"), "content", "deleted under the other stage");
    await store.release();
    await assertCode(store.stackIndex([stageB]), "LAYER_STORE_DAMAGED");
    const again = await store.acquire(layer.diffId, layer.open);
    assert.equal(again.hit, false, "rebuilt once nobody holds it");
    await store.release();
  });
});

test("files missing for a moment (an eviction that puts the entry back) are read again, not damage", async () => {
  await withStore(async (dir) => {
    const layer = await layerOf([{ name: "f", body: "content" }]);
    const notes: string[] = [];
    const store = await LayerStore.open(dir, { maxBytes: BIG, onNote: (m) => notes.push(m) });
    const e = await store.acquire(layer.diffId, layer.open);
    // The index: read (synchronously) as stackIndex starts, while index.bin is away; put back after.
    const index = path.join(e.dir, "index.bin");
    await rename(index, `${index}.away`);
    const stack = store.stackIndex([e]);
    await rename(`${index}.away`, index);
    assert.equal((await stack).kind, "layer");
    // meta.json away while the entry directory is there, put back a moment later.
    const meta = path.join(e.dir, "meta.json");
    await rename(meta, `${meta}.away`);
    const hit = store.acquire(layer.diffId, layer.open);
    await new Promise((r) => setTimeout(r, 2));
    await rename(`${meta}.away`, meta);
    assert.equal((await hit).hit, true);
    assert.deepEqual(notes, []);
    await store.release();
  });
});
