/**
 * Issue #5 figures 1 and 2: compressing the same tar (default 512 MB, made by concatenating the Debian base
 * layer's uncompressed tar) with kiln's compressStream vs `pigz -p2 -6` (goal ≥ 0.9× its throughput) and vs
 * `zstd -T2 -3` (goal ≥ 0.8×). Both sides read the same file and write to /dev/null.
 * Usage: npx tsx bench/fs-compress.ts [--mb 512] [--runs 2]
 */
import { spawnSync } from "node:child_process";
import { createReadStream, createWriteStream, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { gunzipSync } from "node:zlib";
import { compressStream } from "../src/image/index.js";
import { debianOciLayout } from "../test/support/base-images.js";
import { numberFlag } from "./lib/argv.js";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

async function makeInput(file: string, mb: number): Promise<void> {
  const layout = await debianOciLayout();
  const dir = path.join(layout.dir, "blobs", "sha256");
  const biggest = readdirSync(dir)
    .map((n) => path.join(dir, n))
    .sort((a, b) => statSync(b).size - statSync(a).size)[0] as string;
  const tar = gunzipSync(await readFile(biggest));
  const out = createWriteStream(file);
  let written = 0;
  while (written < mb * 1024 * 1024) {
    const n = Math.min(tar.length, mb * 1024 * 1024 - written);
    if (!out.write(tar.subarray(0, n))) await new Promise<void>((r) => out.once("drain", () => r()));
    written += n;
  }
  await new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r())));
}

const devNull = (): Writable =>
  new Writable({
    write(_c, _e, cb) {
      cb();
    },
  });

async function kiln(file: string, kind: "gzip" | "zstd", level: number): Promise<number> {
  const t = process.hrtime.bigint();
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), compressStream(kind, level), devNull());
  return Number(process.hrtime.bigint() - t) / 1e6;
}

function tool(cmd: string): number {
  const t = process.hrtime.bigint();
  const r = spawnSync("sh", ["-c", cmd], { stdio: "ignore" });
  if (r.status !== 0) throw new Error(`${cmd} failed`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}

async function main(): Promise<void> {
  const mb = numberFlag("--mb", 512);
  const runs = numberFlag("--runs", 2);
  const base = mkdtempSync(path.join(process.env.KILN_BENCH_DIR ?? os.tmpdir(), "kiln-bench-compress-"));
  const file = path.join(base, "input.tar");
  try {
    await makeInput(file, mb);
    tool(`cat '${file}' > /dev/null`); // warm the page cache
    const rows: [string, string, number, number, number][] = [];
    for (const [name, kind, level, cmd, goal] of [
      ["gzip -6", "gzip", 6, `pigz -p2 -6 -c '${file}' > /dev/null`, 0.9],
      ["zstd -3", "zstd", 3, `zstd -T2 -3 -q -c '${file}' > /dev/null`, 0.8],
    ] as const) {
      const k: number[] = [];
      const b: number[] = [];
      for (let r = 0; r < runs; r++) {
        b.push(tool(cmd));
        k.push(await kiln(file, kind, level));
      }
      rows.push([name, cmd.split(" ").slice(0, 3).join(" "), median(k), median(b), goal]);
    }
    for (const [name, baseline, k, b, goal] of rows) {
      const kt = mb / (k / 1000);
      const bt = mb / (b / 1000);
      console.log(
        `${name}: kiln ${kt.toFixed(0)} MB/s (${k.toFixed(0)} ms), ${baseline} ${bt.toFixed(0)} MB/s (${b.toFixed(0)} ms); ` +
          `throughput ratio kiln/baseline = ${(kt / bt).toFixed(2)}x (goal >= ${goal}x)`,
      );
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

await main();
