import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { assembleImage, spoolLayer, writeDockerArchive } from "../image/index.js";
import { baseCachePaths, loadCachedBase } from "./base-cache.js";

test("loadCachedBase reads what the warmer layout holds, verifies it and honours the TTL", async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), "kiln-base-cache-"));
  try {
    const layers = [
      await spoolLayer(Readable.from([Buffer.from("first layer")]), {
        dir: d,
        compression: "gzip",
        mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
      }),
      await spoolLayer(Readable.from([Buffer.from("second layer")]), {
        dir: d,
        compression: "gzip",
        mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
      }),
    ];
    const img = assembleImage({
      family: "oci",
      config: { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } },
      layers,
    });
    const cacheDir = path.join(d, "cache");
    const p = baseCachePaths(cacheDir, img.digest);
    await writeDockerArchive(p.archive, img, []);
    await writeFile(p.manifest, img.rawManifest);
    const now = new Date();
    const loaded = await loadCachedBase(cacheDir, img.digest, 60_000, now);
    assert.ok(loaded);
    assert.equal(loaded.digest, img.digest);
    assert.deepEqual(
      loaded.layers.map((l) => l.diffId),
      layers.map((l) => l.diffId),
    );
    const chunks: Buffer[] = [];
    for await (const c of await loaded.layers[1]!.openUncompressed()) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), "second layer");
    // Expired by mtime, like kaniko.
    await utimes(p.archive, new Date(now.getTime() - 120_000), new Date(now.getTime() - 120_000));
    assert.equal(await loadCachedBase(cacheDir, img.digest, 60_000, now), undefined);
    // Absent.
    assert.equal(await loadCachedBase(cacheDir, layers[0]!.digest, 60_000, now), undefined);
    // A manifest that does not hash to its name is refused.
    await utimes(p.archive, now, now);
    await writeFile(p.manifest, "{}");
    await assert.rejects(loadCachedBase(cacheDir, img.digest, 60_000, now), /BASE_CACHE_INVALID|does not hash/);
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});
