import * as assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { MediaTypes, detectCompression } from "../image/index.js";
import { layerFromChanges, publishedLayer, type LayerSink } from "./layer-from-changes.js";

async function blobBytes(dir: string, digest: string): Promise<Buffer> {
  return readFile(path.join(dir, `sha256-${digest.slice("sha256:".length)}`));
}

test("an unpublished stage spools plain tar; publishedLayer compresses it for the cache", async () => {
  const base = await mkdtemp(path.join(tmpdir(), "kiln-lfc-"));
  try {
    const root = path.join(base, "root");
    const blobsDir = path.join(base, "blobs");
    await mkdir(root);
    await writeFile(path.join(root, "f"), "x".repeat(10_000));
    const changes = { changed: ["/f"], deleted: [], opaqueDirs: [] };
    const published: LayerSink = { blobsDir, compression: "gzip", mediaType: MediaTypes.ociLayerGzip, epoch: 0 };
    const internal: LayerSink = { ...published, spoolUncompressed: true };

    const plain = await layerFromChanges(root, changes, internal);
    assert.ok(plain);
    assert.equal(plain.mediaType, MediaTypes.ociLayer);
    assert.equal(plain.digest, plain.diffId, "an uncompressed blob's digest is its diffID");
    assert.ok(plain.size > 10_000);

    const forCache = await publishedLayer(plain, internal);
    assert.equal(forCache.mediaType, MediaTypes.ociLayerGzip);
    assert.equal(forCache.diffId, plain.diffId);
    assert.notEqual(forCache.digest, plain.digest);
    assert.ok(forCache.size < plain.size);
    const gz = await blobBytes(blobsDir, forCache.digest);
    assert.equal(detectCompression(gz.subarray(0, 8)), "gzip");

    // The same step in a published stage gives the very blob the cache got.
    const direct = await layerFromChanges(root, changes, published);
    assert.equal(direct?.digest, forCache.digest);
    // Already published layers pass through untouched.
    assert.equal(await publishedLayer(forCache, internal), forCache);
    assert.equal(
      await publishedLayer(plain, { ...internal, compression: "none", mediaType: MediaTypes.ociLayer }),
      plain,
    );
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});
