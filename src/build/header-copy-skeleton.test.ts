import * as assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { lstat } from "node:fs/promises";
import * as path from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import { gunzipSync } from "node:zlib";
import { FileIndex } from "../fs/file-index.js";
import { applyBuffer, buildTar, listTree, makeSandbox, type Spec } from "../fs/test-helpers.js";
import { readTar } from "../image/tar/index.js";
import { HeaderCopyWriter } from "../cache/header-copy.js";
import { unreadLayerOfSize as sourceOf } from "../cache/testing.js";

// A header copy (src/cache) must give skeleton mode (src/fs) what its layer gives: tested here, in the layer
// that uses both. src/cache/header-copy.test.ts tests the copy on its own.

const LONG = `opt/${"deep-name-".repeat(14)}end`;
/** A layer of everything skeleton mode distinguishes: owned directories, times, links, specials, whiteouts. */
const SPECS: Spec[] = [
  { name: "etc/", type: "dir", mode: 0o750, uid: 7, gid: 8, mtime: 1111.25 },
  { name: "etc/passwd", body: "root:x:0:0::/root:/bin/sh\n", mode: 0o640, mtime: 2222 },
  { name: "usr/lib/big.so", body: Buffer.alloc(64 * 1024, 7), mtime: 3333 },
  { name: "usr/lib/alias.so", type: "hardlink", linkname: "usr/lib/big.so" },
  { name: "lib", type: "symlink", linkname: "usr/lib", mtime: 4444 },
  { name: `${LONG}/`, type: "dir", mode: 0o700, mtime: 5555 },
  { name: `${LONG}/file`, body: "x" },
  { name: "var/pipe", type: "fifo" },
  { name: "var/cache/", type: "dir", mode: 0o1777, mtime: 6666 },
  { name: "var/cache/.wh..wh..opq", body: "" },
  { name: "tmp/.wh.gone", body: "" },
];

const EXPLICIT = new Set(SPECS.map((s) => `/${s.name.replace(/\/$/, "")}`));

/** Applies `tar` in skeleton mode; returns what a COPY would see of it. */
async function skeleton(root: string, tar: Buffer, onEntry?: (h: import("../image/index.js").TarHeader) => void) {
  const index = new FileIndex();
  const others = new Set<string>();
  await applyBuffer(root, tar, { index, skeletonOf: others, ...(onEntry ? { onEntry } : {}) });
  const meta: string[] = [];
  for (const p of [...index.paths()].sort()) {
    const e = index.get(p);
    const st = await lstat(path.join(root, p));
    // Directories only implied by the tar get the time of the extraction.
    const time = EXPLICIT.has(p) ? st.mtimeMs : "-";
    meta.push(`${p} ${e?.type} ${st.mode} ${st.uid}:${st.gid} ${time} ${e?.linkTarget ?? ""}`);
  }
  return { tree: await listTree(root), others: [...others].sort(), meta };
}

test("a header copy lays out the skeleton its layer does, from headers alone", async () => {
  const a = await makeSandbox();
  const b = await makeSandbox();
  try {
    const tar = await buildTar(SPECS);
    const writer = new HeaderCopyWriter(sourceOf(10 * 1024 * 1024));
    const fromLayer = await skeleton(a.root, tar, (h) => writer.add(h));
    const copy = await writer.finish();
    assert.ok(copy, "a copy far smaller than its source is kept");
    const compressed = Buffer.concat(await (await copy.openCompressed()).toArray());
    assert.equal(copy.size, compressed.length);
    assert.equal(copy.digest, `sha256:${createHash("sha256").update(compressed).digest("hex")}`);
    const plain = gunzipSync(compressed);
    assert.equal(copy.diffId, `sha256:${createHash("sha256").update(plain).digest("hex")}`);
    assert.ok(plain.length < tar.length - 64 * 1024, "no file body is in the copy");
    const entries: string[] = [];
    for await (const e of readTar(Readable.from([plain]))) {
      entries.push(e.header.name);
      assert.equal(e.header.type === "file" ? e.header.size : 0, 0, e.header.name);
    }
    assert.equal(entries.length, SPECS.length, "every entry is kept, whiteouts and the opaque marker too");
    assert.ok(entries.includes(`${LONG}/file`), "a long name survives (PAX)");

    const fromCopy = await skeleton(b.root, plain);
    assert.deepEqual(fromCopy.tree, fromLayer.tree);
    assert.deepEqual(fromCopy.others, fromLayer.others);
    assert.deepEqual(fromCopy.meta, fromLayer.meta);
    assert.ok(fromLayer.meta.some((m) => m.startsWith("/etc dir") && m.includes(" 1111250 ")));
  } finally {
    await a.cleanup();
    await b.cleanup();
  }
});
