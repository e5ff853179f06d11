import * as assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import { sha256Digest } from "../digest.js";
import { assembleImage } from "../assemble.js";
import type { Image, Layer } from "../types.js";
import { writeOciLayout } from "./oci-layout.js";

/** An image of one layer over `blob`, with the given local file and stream, claiming to verify the stream. */
function testImageOf(blob: Buffer, l: { localFile: () => string; open: () => Readable }): Image {
  const layer: Layer = {
    mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
    digest: sha256Digest(blob),
    diffId: sha256Digest("tar"),
    size: blob.length,
    verifiesCompressed: true,
    localFile: l.localFile,
    openCompressed: () => Promise.resolve(l.open()),
    openUncompressed: () => Promise.reject(new Error("not read")),
  };
  return assembleImage({
    family: "oci",
    config: {
      architecture: "amd64",
      os: "linux",
      created: "1970-01-01T00:00:00Z",
      rootfs: { type: "layers", diff_ids: [] },
      history: [{ created_by: "test" }],
    },
    layers: [layer],
  });
}

test("a layer's local file is copied into the layout with the mode of the layout's other blobs", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-layout-local-"));
  try {
    const blob = gzipSync(Buffer.from("layer bytes"));
    const local = path.join(dir, "local-blob");
    await writeFile(local, blob);
    const image = testImageOf(blob, { localFile: () => local, open: () => Readable.from([Buffer.from("unused")]) });
    await writeOciLayout(path.join(dir, "out"), image);
    const copied = path.join(dir, "out", "blobs", "sha256", sha256Digest(blob).slice(7));
    assert.deepEqual(await readFile(copied), blob);
    const config = path.join(dir, "out", "blobs", "sha256", image.manifest.config.digest.slice(7));
    assert.equal((await stat(copied)).mode & 0o777, (await stat(config)).mode & 0o777);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a local file of the wrong size is not copied, and the blob read instead is verified", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-layout-local-"));
  try {
    const blob = gzipSync(Buffer.from("layer bytes"));
    const local = path.join(dir, "local-blob");
    await writeFile(local, blob.subarray(0, 5)); // changed after it was made
    // The layer claims to verify what it serves, but serves other bytes: the layout must not take them.
    const image = testImageOf(blob, { localFile: () => local, open: () => Readable.from([blob.subarray(0, 5)]) });
    await assert.rejects(writeOciLayout(path.join(dir, "out"), image), /DIGEST_MISMATCH|truncated|expected/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
