import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import type { Digest } from "../image/index.js";
import { emptyHeader, type TarEntryType, type TarHeader } from "../image/tar/index.js";
import { HEADER_COPY_ANNOTATION, headerCopyDiffId, headerCopyImage, HeaderCopyWriter } from "./header-copy.js";
import { unreadLayerOfSize as sourceOf } from "./testing.js";

const header = (name: string, type: TarEntryType = "file", size = 0): TarHeader => ({
  ...emptyHeader(name, type),
  size,
});

/** The headers of a small image layer: directories, a large file, a link, whiteouts. */
const HEADERS: TarHeader[] = [
  header("etc/", "dir"),
  header("etc/passwd", "file", 27),
  header("usr/lib/big.so", "file", 64 * 1024),
  { ...header("lib", "symlink"), linkname: "usr/lib" },
  header("var/cache/.wh..wh..opq"),
  header("tmp/.wh.gone"),
];

test("a copy not worth keeping, or dropped, finishes as undefined", async () => {
  // Headers outgrow twice the source's size: capture stops early.
  const tiny = new HeaderCopyWriter(sourceOf(1000));
  for (let i = 0; i < 4; i++) for (const h of HEADERS) tiny.add({ ...h, name: `${i}/${h.name}` });
  assert.equal(await tiny.finish(), undefined);
  // Complete, but more than a quarter of its source: names that do not compress.
  const close = new HeaderCopyWriter(sourceOf(56 * 1024));
  for (let i = 0; i < 200; i++) close.add(header(randomBytes(74).toString("base64url").slice(0, 99)));
  assert.equal(await close.finish(), undefined);
  // The same names against a source 40 times larger: kept, so the size rule is what refused them above.
  const kept = new HeaderCopyWriter(sourceOf(40 * 56 * 1024));
  for (let i = 0; i < 200; i++) kept.add(header(randomBytes(74).toString("base64url").slice(0, 99)));
  assert.ok(await kept.finish());
  const dropped = new HeaderCopyWriter(sourceOf(10 * 1024 * 1024));
  for (const h of HEADERS) dropped.add(h);
  dropped.abort();
  assert.equal(await dropped.finish(), undefined);
});

test("only a copy recorded for the layer asked about is used", async () => {
  const writer = new HeaderCopyWriter(sourceOf(10 * 1024 * 1024));
  for (const h of HEADERS) writer.add(h);
  const copy = await writer.finish();
  assert.ok(copy);
  const of = `sha256:${"3".repeat(64)}` as Digest;
  const img = headerCopyImage(of, copy, { os: "linux", architecture: "amd64" });
  const view = (annotations: Record<string, string> | undefined, layerCount = 1) => ({
    annotations,
    layerCount,
    layer: () => copy,
  });
  const ann = img.manifest.annotations;
  assert.equal(headerCopyDiffId(view(ann), of), copy.diffId);
  assert.equal(headerCopyDiffId(view(ann), `sha256:${"4".repeat(64)}` as Digest), undefined, "another layer's copy");
  assert.equal(headerCopyDiffId(view(ann, 2), of), undefined, "not a one-layer image");
  const v2 = { [HEADER_COPY_ANNOTATION]: (ann?.[HEADER_COPY_ANNOTATION] ?? "").replace('"v":1', '"v":2') };
  assert.equal(headerCopyDiffId(view(v2), of), undefined, "another format version");
  assert.equal(headerCopyDiffId(view({ [HEADER_COPY_ANNOTATION]: "not json" }), of), undefined);
});
