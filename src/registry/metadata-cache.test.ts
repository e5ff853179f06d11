import * as assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { metadataCache } from "./metadata-cache.js";

const digestOf = (b: Uint8Array): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-metadata-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("a kept config is read back by digest; anything that does not match its digest is ignored", async () => {
  await withDir(async (root) => {
    const dir = path.join(root, "image-metadata");
    const c = metadataCache(dir);
    const cfg = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
    const d = digestOf(cfg);
    assert.equal(await c.get(d, 1 << 20), undefined, "nothing kept yet");
    await c.put(d, cfg);
    assert.deepEqual(await c.get(d, 1 << 20), cfg);
    assert.equal(await c.get(d, cfg.length - 1), undefined, "larger than the caller accepts");
    assert.deepEqual(await readdir(dir), [`${d.slice(7)}.json`], "no temporary file left");
    // A damaged or planted file is not used.
    await writeFile(path.join(dir, `${d.slice(7)}.json`), cfg.toString().replace("amd64", "arm64"));
    assert.equal(await c.get(d, 1 << 20), undefined);
    // Not a sha256 digest: neither kept nor read.
    await c.put("sha512:00", cfg);
    assert.equal(await c.get("sha512:00", 1 << 20), undefined);
  });
});

test("an unusable directory only means no cache", async () => {
  await withDir(async (root) => {
    const blocker = path.join(root, "file");
    await writeFile(blocker, "x");
    const c = metadataCache(path.join(blocker, "image-metadata")); // ENOTDIR, also for root
    const cfg = Buffer.from("{}");
    await c.put(digestOf(cfg), cfg);
    assert.equal(await c.get(digestOf(cfg), 1 << 20), undefined);
    assert.deepEqual(await readdir(root), ["file"]);
  });
});

test("past 256 files the least recently written half is deleted", async () => {
  await withDir(async (dir) => {
    const c = metadataCache(dir);
    const old = Date.now() / 1000 - 3600;
    const digests: string[] = [];
    for (let i = 0; i < 256; i++) {
      const b = Buffer.from(`{"n":${i}}`);
      const d = digestOf(b);
      await writeFile(path.join(dir, `${d.slice(7)}.json`), b);
      await utimes(path.join(dir, `${d.slice(7)}.json`), old + i, old + i);
      digests.push(d);
    }
    const newest = Buffer.from('{"n":"newest"}');
    await c.put(digestOf(newest), newest);
    const left = await readdir(dir);
    assert.equal(left.length, 128);
    assert.ok(left.includes(`${digestOf(newest).slice(7)}.json`));
    assert.ok(left.includes(`${(digests[255] as string).slice(7)}.json`), "recent ones stay");
    assert.ok(!left.includes(`${(digests[0] as string).slice(7)}.json`), "the oldest go");
  });
});
