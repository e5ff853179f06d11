import * as assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import { sha256Digest } from "../digest.js";
import { layerFromBlobFile } from "./spool.js";

test("a blob file that is gone rejects the open instead of erroring a stream later", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-blob-"));
  try {
    const data = gzipSync(Buffer.from("tar bytes"));
    const file = path.join(dir, "blob");
    await writeFile(file, data);
    const info = { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", size: data.length, verify: true };
    const layer = layerFromBlobFile(file, { ...info, digest: sha256Digest(data), diffId: sha256Digest("x") });
    const chunks: Buffer[] = [];
    for await (const c of await layer.openCompressed()) chunks.push(c as Buffer);
    assert.deepEqual(Buffer.concat(chunks), data);
    await rm(file);
    await assert.rejects(layer.openCompressed(), /ENOENT/);
    await assert.rejects(layer.openUncompressed(), /ENOENT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
