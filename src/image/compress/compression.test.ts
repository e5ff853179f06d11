import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { test } from "node:test";
import { gunzipSync } from "node:zlib";
import { hasCode } from "../../common/errors.js";
import { compressStream, decompressAuto, detectCompression } from "./compression.js";
import { looksIncompressible } from "./parallel-gzip.js";

async function collect(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function compress(data: Buffer, kind: "gzip" | "zstd" | "none", chunk: number, level?: number): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunk) pieces.push(data.subarray(i, i + chunk));
  return collect(Readable.from(pieces).pipe(compressStream(kind, level)));
}

/** ~3 MiB mixing incompressible and highly repetitive content, so blocks differ in ratio. */
function sampleData(): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < 12; i++) {
    parts.push(i % 3 === 0 ? randomBytes(100_000) : Buffer.from(`line ${i} of some text\n`.repeat(9000)));
  }
  return Buffer.concat(parts);
}

test("parallel gzip output is one valid member readable by gzip, pigz and zlib", async () => {
  const data = sampleData();
  const gz = await compress(data, "gzip", 65_536);
  assert.equal(detectCompression(gz), "gzip");
  assert.ok(gz.length < data.length, "it compresses");
  assert.ok(gunzipSync(gz).equals(data), "node zlib");
  assert.ok(execFileSync("gzip", ["-dc"], { input: gz, maxBuffer: 1 << 26 }).equals(data), "gzip -d");
  assert.ok(execFileSync("pigz", ["-dc"], { input: gz, maxBuffer: 1 << 26 }).equals(data), "pigz -d");
  execFileSync("gzip", ["-t"], { input: gz }); // CRC32 and ISIZE verified by gzip
  // exactly one member: trailer ISIZE is the full length
  assert.equal(gz.readUInt32LE(gz.length - 4), data.length);
});

test("parallel gzip is deterministic regardless of input chunking and honours the level", async () => {
  const data = sampleData();
  const a = await compress(data, "gzip", 1000);
  const b = await compress(data, "gzip", 1 << 20);
  assert.ok(a.equals(b));
  const fast = await compress(data, "gzip", 1 << 20, 1);
  const best = await compress(data, "gzip", 1 << 20, 9);
  assert.ok(gunzipSync(fast).equals(data) && gunzipSync(best).equals(data));
  assert.notEqual(fast.length, best.length);
  assert.equal(fast[8], 4);
  assert.equal(best[8], 2);
});

test("incompressible blocks are stored, not deflated; compressible and record-structured blocks are not", async () => {
  // Random bytes (as in compressed or encrypted files): stored. The stream is still valid gzip.
  const random = randomBytes(4 << 20);
  assert.ok(looksIncompressible(random.subarray(0, 256 * 1024)));
  const gz = await compress(random, "gzip", 1 << 20, 9);
  assert.ok(gunzipSync(gz).equals(random));
  assert.ok(execFileSync("gzip", ["-dc"], { input: gz, maxBuffer: 1 << 26 }).equals(random), "gzip -d");
  assert.ok(gz.length <= random.length * 1.001, `stored: ${gz.length} for ${random.length}`);
  // Text: deflated as before.
  const text = Buffer.from("the quick brown fox jumps over the lazy dog\n".repeat(8000));
  assert.ok(!looksIncompressible(text));
  // 16-byte records whose first byte is random and the rest constant: highly compressible, and a
  // sample taken every 16th byte would have seen only the random column.
  const records = Buffer.alloc(256 * 1024, 0x41);
  const noise = randomBytes(records.length / 16);
  for (let i = 0; i < noise.length; i++) records[i * 16] = noise[i] as number;
  assert.ok(!looksIncompressible(records));
  assert.ok((await compress(records, "gzip", 1 << 20)).length < records.length / 4);
  // Too short to judge (a stream's last block): deflated.
  assert.ok(!looksIncompressible(random.subarray(0, 32 * 1024)));
});

test("gzip of empty input is a valid empty gzip", async () => {
  const gz = await compress(Buffer.alloc(0), "gzip", 1);
  assert.equal(gunzipSync(gz).length, 0);
  assert.equal(execFileSync("gzip", ["-dc"], { input: gz }).length, 0);
});

test("zstd round trip, readable by the zstd program; decompressAuto sniffs gzip, zstd and plain", async () => {
  const data = sampleData();
  const zst = await compress(data, "zstd", 50_000);
  assert.equal(detectCompression(zst), "zstd");
  assert.ok(execFileSync("zstd", ["-dc"], { input: zst, maxBuffer: 1 << 26 }).equals(data));
  assert.ok((await collect(await decompressAuto(Readable.from([zst])))).equals(data));
  const gz = await compress(data, "gzip", 50_000);
  // split the magic across chunks
  assert.ok((await collect(await decompressAuto(Readable.from([gz.subarray(0, 1), gz.subarray(1)])))).equals(data));
  assert.ok((await collect(await decompressAuto(Readable.from([data])))).equals(data));
  assert.equal((await collect(await decompressAuto(Readable.from([])))).length, 0);
  assert.ok((await compress(data, "none", 70_000)).equals(data));
});

test("decompressAuto surfaces corrupt gzip as an error", async () => {
  const gz = await compress(sampleData(), "gzip", 1 << 20);
  gz[gz.length - 6] = (gz[gz.length - 6] ?? 0) ^ 0xff; // break the CRC
  await assert.rejects(collect(await decompressAuto(Readable.from([gz]))));
});

test("zstd without Node support or the zstd program fails with ZSTD_UNAVAILABLE", async (t) => {
  const z = (await import("node:zlib")) as unknown as Record<string, unknown>;
  if (typeof z.createZstdCompress === "function") {
    t.skip("this Node has built-in zstd");
    return;
  }
  const saved = process.env.PATH;
  process.env.PATH = "/nonexistent";
  try {
    const s = compressStream("zstd");
    await assert.rejects(collect(Readable.from([Buffer.from("x")]).pipe(s)), (e: unknown) =>
      hasCode(e, "ZSTD_UNAVAILABLE"),
    );
  } finally {
    process.env.PATH = saved;
  }
});
