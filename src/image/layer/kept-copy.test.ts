import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import { digestHex, sha256Digest, type Digest } from "../digest.js";
import { decompressAuto } from "../compress/compression.js";
import type { Layer } from "../types.js";
import { keepingCopy } from "./kept-copy.js";
import { verified } from "./verifying-stream.js";

const MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip";

/** A registry-like layer over `blob` (served in 64 KiB chunks, verified against `digest`), counting its opens. */
function sourceLayer(blob: Buffer, digest: Digest = sha256Digest(blob)): { layer: Layer; opens: () => number } {
  let opens = 0;
  const open = (): Readable => {
    opens++;
    const chunks: Buffer[] = [];
    for (let i = 0; i < blob.length; i += 64 * 1024) chunks.push(blob.subarray(i, i + 64 * 1024));
    return verified(Readable.from(chunks), digest, blob.length);
  };
  const layer: Layer = {
    mediaType: MEDIA_TYPE,
    digest,
    diffId: sha256Digest("unused"),
    size: blob.length,
    origins: [{ registry: "registry.example", repository: "base" }],
    verifiesCompressed: true,
    openCompressed: () => Promise.resolve(open()),
    openUncompressed: () => decompressAuto(open()),
  };
  return { layer, opens: () => opens };
}

async function readAll(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-kept-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A callback for keepingCopy's `onKept` and a promise of its first call. */
function keptSignal(): { onKept: (l: Layer) => void; kept: Promise<Layer> } {
  let resolve: (l: Layer) => void = () => undefined;
  const kept = new Promise<Layer>((r) => (resolve = r));
  return { onKept: (l) => resolve(l), kept };
}

test(
  "a layer read whole for an extraction keeps its blob, and later reads of the blob use the copy",
  { timeout: 20_000 },
  async () => {
    await withDir(async (dir) => {
      const tar = randomBytes(600 * 1024); // incompressible: the blob spans several chunks
      const blob = gzipSync(tar);
      const src = sourceLayer(blob);
      const k = keptSignal();
      const layer = keepingCopy(src.layer, dir, k.onKept);
      assert.equal(layer.localFile?.(), undefined);
      assert.deepEqual(await readAll(await layer.openUncompressed()), tar);
      assert.equal(await k.kept, layer);
      assert.equal(layer.localFile?.(), path.join(dir, `kept-${digestHex(src.layer.digest)}`));
      const file = path.join(dir, `kept-${digestHex(src.layer.digest)}`);
      assert.deepEqual(await readFile(file), blob);
      // The default mode of a new file, as every blob file kiln writes (a layout's copy keeps it).
      await writeFile(path.join(dir, "..probe"), "x");
      const modeOf = async (f: string): Promise<number> => (await stat(f)).mode & 0o777;
      assert.equal(await modeOf(file), await modeOf(path.join(dir, "..probe")));
      await rm(path.join(dir, "..probe"));
      assert.deepEqual(await readAll(await layer.openCompressed()), blob);
      assert.deepEqual(await readAll(await layer.openUncompressed()), tar);
      assert.equal(src.opens(), 1, "the registry blob was read once");
      assert.deepEqual(await readdir(dir), [path.basename(file)], "no temp file is left");
      assert.deepEqual(layer.origins, src.layer.origins, "mount candidates are kept");
    });
  },
);

test("an extraction stopped early keeps no copy, and the next read downloads the blob again", async () => {
  await withDir(async (dir) => {
    const blob = gzipSync(randomBytes(600 * 1024));
    const src = sourceLayer(blob);
    const layer = keepingCopy(src.layer, dir);
    const s = await layer.openUncompressed();
    const it = s[Symbol.asyncIterator]();
    await it.next();
    s.destroy();
    await new Promise((r) => s.once("close", r));
    // The partial copy is removed in the background.
    for (let i = 0; i < 1000 && (await readdir(dir)).length > 0; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(await readdir(dir), []);
    assert.equal(layer.localFile?.(), undefined);
    assert.deepEqual(await readAll(await layer.openCompressed()), blob);
    assert.equal(src.opens(), 2, "the blob was downloaded again");
  });
});

test("a blob that fails verification is not kept", async () => {
  await withDir(async (dir) => {
    const blob = gzipSync(randomBytes(300 * 1024));
    const wrong = sha256Digest(Buffer.concat([blob, Buffer.from("x")]));
    const src = sourceLayer(blob, wrong);
    const layer = keepingCopy(src.layer, dir);
    await assert.rejects(readAll(await layer.openUncompressed()), /DIGEST_MISMATCH|digest/);
    for (let i = 0; i < 1000 && (await readdir(dir)).length > 0; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(await readdir(dir), []);
    assert.equal(layer.localFile?.(), undefined);
  });
});

test("a copy that cannot be written never fails the extraction", async () => {
  await withDir(async (dir) => {
    const tar = randomBytes(300 * 1024);
    const src = sourceLayer(gzipSync(tar));
    // A file where the copy's directory should be: the copy's temp file cannot be created (ENOTDIR).
    await writeFile(path.join(dir, "not-a-dir"), "x");
    const layer = keepingCopy(src.layer, path.join(dir, "not-a-dir"));
    assert.deepEqual(await readAll(await layer.openUncompressed()), tar);
    assert.equal(layer.localFile?.(), undefined);
    assert.deepEqual(gunzipSync(await readAll(await layer.openCompressed())), tar);
  });
});

test(
  "a source that closes before its end fails the extraction instead of leaving it waiting",
  { timeout: 20_000 },
  async () => {
    await withDir(async (dir) => {
      const blob = gzipSync(randomBytes(300 * 1024));
      const closing: Layer = {
        ...sourceLayer(blob).layer,
        // Two chunks, then a close without an error (as a socket that went away may end a body).
        openCompressed: () => {
          const s = new Readable({ read() {} });
          s.push(blob.subarray(0, 64 * 1024));
          s.push(blob.subarray(64 * 1024, 128 * 1024));
          setImmediate(() => s.destroy());
          return Promise.resolve(s);
        },
      };
      const layer = keepingCopy(closing, dir);
      await assert.rejects(readAll(await layer.openUncompressed()), /premature close/i);
      assert.equal(layer.localFile?.(), undefined);
    });
  },
);

test("two extractions at once make one copy", { timeout: 20_000 }, async () => {
  await withDir(async (dir) => {
    const tar = randomBytes(300 * 1024);
    const src = sourceLayer(gzipSync(tar));
    let kept = 0;
    const k = keptSignal();
    const layer = keepingCopy(src.layer, dir, (l) => {
      kept++;
      k.onKept(l);
    });
    const [a, b] = await Promise.all([layer.openUncompressed(), layer.openUncompressed()]);
    assert.deepEqual(await readAll(a), tar);
    assert.deepEqual(await readAll(b), tar);
    await k.kept;
    assert.equal(kept, 1);
    assert.equal(src.opens(), 2, "the second extraction read the registry, not a copy in progress");
    assert.equal((await readdir(dir)).length, 1);
  });
});

test("a copy whose size changed after it was made is not read: the registry is", { timeout: 20_000 }, async () => {
  await withDir(async (dir) => {
    const blob = gzipSync(randomBytes(300 * 1024));
    const src = sourceLayer(blob);
    const k = keptSignal();
    const layer = keepingCopy(src.layer, dir, k.onKept);
    await readAll(await layer.openUncompressed());
    await k.kept;
    const file = layer.localFile?.();
    assert.ok(file !== undefined);
    await truncate(file, 10);
    assert.deepEqual(await readAll(await layer.openCompressed()), blob);
    assert.equal(src.opens(), 2);
    assert.equal(layer.localFile?.(), undefined);
  });
});

const isRoot = process.getuid?.() === 0;

test(
  "no copy on a filesystem without 4x the blob's size free",
  { timeout: 20_000, skip: isRoot ? false : "needs root to mount a tmpfs" },
  async () => {
    await withDir(async (dir) => {
      const small = path.join(dir, "small");
      await mkdir(small);
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "kiln-test-kept", small]);
      try {
        const tar = randomBytes(300 * 1024); // ~300 KiB compressed: 1.2 MiB would be needed
        const src = sourceLayer(gzipSync(tar));
        const layer = keepingCopy(src.layer, small);
        assert.deepEqual(await readAll(await layer.openUncompressed()), tar);
        assert.equal(layer.localFile?.(), undefined);
        assert.deepEqual(await readdir(small), []);
      } finally {
        execFileSync("umount", ["-l", small]);
      }
    });
  },
);
