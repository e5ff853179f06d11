import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { FileIndex } from "../file-index.js";
import { mergeOverlayUpper } from "./overlay-upper.js";
import { ListedStat, parseUpperListing } from "./upper-listing.js";

interface Rec {
  path: string;
  /** mode uid gid nlink size rdev ino dev atime-s atime-ns mtime-s mtime-ns ctime-s ctime-ns */
  fields: bigint[];
  xattrs?: [string, Buffer][];
}

/** The kiln-exec `--list-upper` format (native/kiln-exec.c `list_upper`), written independently. */
function encode(recs: Rec[], count = BigInt(recs.length)): Buffer {
  const parts: Buffer[] = [Buffer.from("KLNUPL1\n", "latin1")];
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const bytes = (s: string | Buffer): Buffer => {
    const b = typeof s === "string" ? Buffer.from(s, "utf8") : s;
    return Buffer.concat([u32(b.length), b]);
  };
  for (const r of recs) {
    parts.push(bytes(r.path));
    for (const f of r.fields) {
      const b = Buffer.alloc(8);
      if (f < 0n) b.writeBigInt64LE(f);
      else b.writeBigUInt64LE(f);
      parts.push(b);
    }
    parts.push(u32(r.xattrs?.length ?? 0));
    for (const [n, v] of r.xattrs ?? []) parts.push(bytes(n), bytes(v));
  }
  const end = Buffer.alloc(8);
  end.writeBigUInt64LE(count);
  parts.push(u32(0xffffffff), end);
  return Buffer.concat(parts);
}

const DIR: Rec = {
  path: "dir",
  fields: [0o40755n, 1n, 2n, 2n, 4096n, 0n, 77n, 2049n, 10n, 5n, 1700000000n, 123456789n, 1700000001n, 999999999n],
  xattrs: [["trusted.overlay.opaque", Buffer.from("y")]],
};
const FILE: Rec = {
  path: "dir/ünï",
  fields: [0o100644n, 0n, 0n, 1n, 3n, 0n, 78n, 2049n, -1n, 500000000n, 0n, 0n, 0n, 1n],
  xattrs: [["security.capability", Buffer.from([1, 0, 0, 2, 0, 4, 0, 0])]],
};
const WHITEOUT: Rec = {
  path: "gone",
  fields: [0o20000n, 0n, 0n, 1n, 0n, 0n, 79n, 2049n, 0n, 0n, 0n, 0n, 0n, 0n],
};

test("parseUpperListing reads records with their stat fields and xattrs", () => {
  const got = parseUpperListing(encode([DIR, FILE, WHITEOUT]));
  assert.ok(got !== undefined);
  assert.deepEqual(
    got.entries.map((e) => e.cpath),
    ["/dir", "/dir/ünï", "/gone"],
  );
  const [d, f, w] = got.entries.map((e) => e.st) as [ListedStat, ListedStat, ListedStat];
  assert.ok(d.isDirectory() && !d.isFile());
  assert.deepEqual([d.uid, d.gid, d.nlink, d.size, d.ino, d.dev], [1n, 2n, 2n, 4096n, 77n, 2049n]);
  assert.equal(d.mtimeNs, 1700000000123456789n);
  assert.equal(d.mtimeMs, 1700000000123n);
  assert.equal(d.ctimeNs, 1700000001999999999n);
  assert.equal(d.atimeMs, 10000n);
  assert.equal(f.atimeNs, -500000000n, "times before 1970");
  assert.ok(f.isFile() && !f.isSymbolicLink() && !f.isFIFO() && !f.isBlockDevice());
  assert.ok(w.isCharacterDevice() && w.rdev === 0n);
  assert.deepEqual(
    got.attrs,
    new Map([
      ["/dir", new Map(DIR.xattrs)],
      ["/dir/ünï", new Map(FILE.xattrs)],
    ]),
  );
});

test("parseUpperListing rejects anything but a complete listing", () => {
  const good = encode([DIR, FILE]);
  assert.ok(parseUpperListing(good) !== undefined);
  assert.ok(parseUpperListing(encode([])) !== undefined, "an empty upper");
  for (let n = 0; n < good.length; n++) assert.equal(parseUpperListing(good.subarray(0, n)), undefined, `cut at ${n}`);
  assert.equal(parseUpperListing(Buffer.concat([good, Buffer.from([0])])), undefined, "trailing bytes");
  assert.equal(parseUpperListing(encode([DIR, FILE], 3n)), undefined, "record count");
  const wrongMagic = Buffer.from(good);
  wrongMagic[6] = 0x32;
  assert.equal(parseUpperListing(wrongMagic), undefined, "another format version");
  assert.equal(parseUpperListing(encode([{ ...DIR, path: "" }])), undefined, "an empty path");
});

test("mergeOverlayUpper walks the upper itself when the listing is missing or malformed", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "kiln-listing-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const bogus = encode([{ ...FILE, path: "bogus" }]);
  for (const [name, listing] of [
    ["missing", undefined],
    ["truncated", bogus.subarray(0, bogus.length - 1)],
    ["garbage", Buffer.from("not a listing")],
  ] as const) {
    const root = path.join(dir, name, "root");
    const upper = path.join(dir, name, "upper");
    await mkdir(path.join(root, "etc"), { recursive: true });
    await mkdir(path.join(upper, "etc", "new"), { recursive: true });
    await writeFile(path.join(upper, "etc", "new", "f"), "f");
    const file = path.join(dir, name, "upper.list");
    if (listing !== undefined) await writeFile(file, listing);
    const index = await FileIndex.fromWalk(root);
    const changes = await mergeOverlayUpper(root, upper, index, { listing: file });
    assert.deepEqual(changes.changed, ["/etc", "/etc/new", "/etc/new/f"], name);
    assert.ok(!index.has("/bogus") && index.get("/etc/new/f")?.type === "file", name);
  }
});
