import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { FileIndex } from "./file-index.js";
import type { IndexEntry } from "./file-index.js";
import { ColumnarIndex, encodeColumnarIndex } from "./layer-store/columnar-index.js";
import { IgnoreList } from "./ignore-list.js";
import { dropIgnored } from "./layer-store/layer-index.js";

function entry(type: IndexEntry["type"], ino: number, extra: Partial<IndexEntry> = {}): IndexEntry {
  return {
    type,
    mode: type === "dir" ? 0o755 : 0o644,
    uid: ino % 7,
    gid: ino % 5,
    size: type === "file" ? ino * 3 : 0,
    mtimeNs: 1_700_000_000_123_456_789n + BigInt(ino),
    ctimeNs: 1_600_000_000_000_000_001n * BigInt(1 + (ino % 3)),
    ino,
    dev: 0,
    nlink: 1 + (ino % 2),
    ...extra,
  };
}

/** A deterministic pseudo-random generator (tests must be reproducible). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A tree with nested dirs, files, symlinks, names with odd characters and a non-Latin-1 name. */
function sampleIndex(): FileIndex {
  const ix = new FileIndex();
  let ino = 1;
  for (const d of ["/a", "/a/b", "/a/b/c", "/a-b", "/etc", "/var", "/var/run", "/tmp", "/tmp/apt-key-gpghome", "/z"]) {
    ix.setClean(d, entry("dir", ino++));
  }
  for (const d of ["/a", "/a/b", "/a/b/c", "/a-b", "/etc", "/var/run", "/tmp/apt-key-gpghome", "/z"]) {
    for (let i = 0; i < 6; i++) ix.setClean(`${d}/f${i}`, entry("file", ino++));
  }
  ix.setClean("/etc/mtab", entry("symlink", ino++, { linkTarget: "/proc/self/mounts", size: 17 }));
  ix.setClean("/a/b/lnk", entry("symlink", ino++, { linkTarget: "c/f1", size: 4 }));
  ix.setClean("/z/ünï €", entry("file", ino++));
  ix.setClean("/z/sp ace", entry("fifo", ino++));
  return ix;
}

/** The stored bytes of `ix` as the stack index of key "k". */
function storedOf(ix: FileIndex): Buffer {
  return encodeColumnarIndex(ix, {
    kind: "stack",
    key: "k",
    whiteouts: [],
    opaqueDirs: [],
    implicitDirs: [],
    fixups: [],
  });
}

function columnsOf(ix: FileIndex, dev = 0): ColumnarIndex {
  return ColumnarIndex.decode(storedOf(ix), "stack", "k").withDev(dev);
}

/** Everything observable through the FileIndex API, in a comparable form. */
function observe(ix: FileIndex, probes: readonly string[], withChildren = true): unknown {
  const paths = [...ix.paths()].sort();
  // Children sets are built from the base on first use: leave them unasked sometimes.
  const dirs = withChildren ? ["/", ...probes] : [];
  return {
    size: ix.size,
    paths,
    entries: probes.map((p) => [p, ix.has(p), ix.get(p)]),
    children: dirs.map((d) => [d, [...(ix.childNames(d) ?? [])].sort(), ix.childrenOf(d).sort()]),
  };
}

test("a columnar round trip keeps every entry, link target, BigInt time and the children", () => {
  const plain = sampleIndex();
  const lazy = FileIndex.fromBase(columnsOf(plain, 0));
  const probes = [...plain.paths(), "/nope", "/a/b/nope"];
  assert.deepEqual(observe(lazy, probes), observe(plain, probes));
  assert.equal(lazy.get("/etc/mtab")?.linkTarget, "/proc/self/mounts");
  assert.equal(lazy.get("/z/ünï €")?.type, "file");
  const withDev = FileIndex.fromBase(columnsOf(plain, 42));
  assert.equal(withDev.get("/a/b/c/f0")?.dev, 42);
});

test("a damaged, truncated or foreign columnar index is refused", () => {
  const data = encodeColumnarIndex(sampleIndex(), {
    kind: "layer",
    key: "sha256:x",
    whiteouts: ["/w"],
    opaqueDirs: [],
    implicitDirs: ["/a"],
    fixups: [],
  });
  assert.deepEqual(ColumnarIndex.decode(data, "layer", "sha256:x").whiteouts, ["/w"]);
  const flipped = Buffer.from(data);
  flipped.writeUInt8(flipped.readUInt8(flipped.length - 3) ^ 1, flipped.length - 3);
  assert.throws(() => ColumnarIndex.decode(flipped, "layer", "sha256:x"), /digest/);
  assert.throws(() => ColumnarIndex.decode(data.subarray(0, data.length - 8), "layer", "sha256:x"), /digest/);
  assert.throws(() => ColumnarIndex.decode(data, "layer", "sha256:y"), /not the layer index/);
  assert.throws(() => ColumnarIndex.decode(data, "stack", "sha256:x"), /not the stack index/);
  assert.throws(() => ColumnarIndex.decode(Buffer.from('{"version":1}'), "layer", "sha256:x"), /older format/);
  // An unaligned copy (small reads come from a shared pool) still loads.
  const unaligned = Buffer.alloc(data.length + 1).subarray(1);
  data.copy(unaligned);
  assert.equal(ColumnarIndex.decode(unaligned, "layer", "sha256:x").count, sampleIndex().size);
});

test("an index on a base behaves exactly like a fully built one under random changes", () => {
  for (let seed = 1; seed <= 25; seed++) {
    const rand = rng(seed);
    const plain = sampleIndex();
    const lazy = FileIndex.fromBase(columnsOf(plain));
    const pool = [...plain.paths(), "/new", "/new/x", "/a/b/c/g", "/etc/mtab/x", "/q/r/s"];
    let clone: [FileIndex, FileIndex] | undefined;
    for (let step = 0; step < 60; step++) {
      const p = pool[Math.floor(rand() * pool.length)] as string;
      const op = Math.floor(rand() * 6);
      for (const ix of [plain, lazy]) {
        if (op === 0) ix.deleteTree(p);
        else if (op === 1) ix.delete(p);
        else if (op === 2) ix.set(p, entry("dir", 1000 + step));
        else if (op === 3) ix.set(p, entry("file", 2000 + step));
        else if (op === 4) ix.childNames(p);
        else if (step === 30) ix.deleteTree("/");
      }
      if (step === 20) clone = [plain.clone(), lazy.clone()];
      const all = step % 7 === 6 || step === 59;
      assert.deepEqual(observe(lazy, pool, all), observe(plain, pool, all), `seed ${seed} step ${step} op ${op} ${p}`);
    }
    if (clone !== undefined) {
      clone[0].deleteTree("/a");
      clone[1].deleteTree("/a");
      assert.deepEqual(observe(clone[1], pool), observe(clone[0], pool), `clone, seed ${seed}`);
    }
  }
});

test("dropIgnored deletes exactly what a per-path ignore test deletes", () => {
  const lists = [
    IgnoreList.create({ stateDir: "/kaniko" }),
    IgnoreList.create({ systemMounts: true, ignorePaths: ["/a/*/c", "/z/ü*"] }),
    IgnoreList.create({ volumes: ["/a/b"], ignorePaths: ["/a-b/f?"], ignoreVarRun: false }),
    IgnoreList.create({ ignorePaths: ["/*"] }),
  ];
  for (const [n, ignore] of lists.entries()) {
    const expected = sampleIndex();
    for (const p of [...expected.paths()]) if (expected.has(p) && ignore.ignores(p)) expected.deleteTree(p);
    for (const ix of [sampleIndex(), FileIndex.fromBase(columnsOf(sampleIndex()))]) {
      dropIgnored(ix, ignore);
      const probes = [...sampleIndex().paths()];
      assert.deepEqual(observe(ix, probes), observe(expected, probes), `ignore list ${n}`);
    }
  }
  // /tmp/apt-key-gpghome itself stays; what lies below goes.
  const ix = sampleIndex();
  dropIgnored(ix, IgnoreList.create({}));
  assert.ok(ix.has("/tmp/apt-key-gpghome") && !ix.has("/tmp/apt-key-gpghome/f0"));
  assert.ok(!ix.has("/etc/mtab") && !ix.has("/var/run") && ix.has("/var"));
});

test("a stored index whose sibling links loop or leave the index is refused when decoded", () => {
  const ix = new FileIndex();
  ix.setClean("/a", entry("dir", 1));
  for (const [i, n] of ["b", "c", "d"].entries()) ix.setClean(`/a/${n}`, entry("file", 2 + i));
  const data = storedOf(ix);
  const links = Buffer.from(new Int32Array([-1, 2, 3, -1]).buffer);
  const at = data.indexOf(links);
  assert.ok(at > 0 && data.indexOf(links, at + 1) < 0, "the sibling column is found once");
  /** Writes `v` as sibling link `i` and signs the bytes again, as a forger with write access to the cache could. */
  const forge = (i: number, v: number): Buffer => {
    const out = Buffer.from(data);
    out.writeInt32LE(v, at + 4 * i);
    createHash("sha256").update(out.subarray(40)).digest().copy(out, 8);
    return out;
  };
  const ok = ColumnarIndex.decode(data, "stack", "k");
  assert.deepEqual(ok.childNamesAt(ok.find("/a")), ["b", "c", "d"]);
  // c's next sibling is b again: a loop childNamesAt would follow forever.
  assert.throws(() => ColumnarIndex.decode(forge(2, 1), "stack", "k"), /bad sibling links/);
  assert.throws(() => ColumnarIndex.decode(forge(2, 99), "stack", "k"), /bad sibling links/);
  assert.throws(() => ColumnarIndex.decode(forge(3, 0), "stack", "k"), /bad sibling links/);
});
