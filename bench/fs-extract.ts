/**
 * Issue #5 figure 3: extracting the Debian base layer — kiln's applyLayer vs `tar -xzf` (GNU tar), same
 * layer, same filesystem, same run. Prints the times and the ratio (goal ≤ 1.2×).
 * Usage: npx tsx bench/fs-extract.ts [layer.tar.gz] [--runs N]
 */
import { execFileSync } from "node:child_process";
import { createReadStream, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { debianOciLayout } from "../test/support/base-images.js";
import { FileIndex, applyLayer } from "../src/fs/index.js";
import { decompressAuto } from "../src/image/index.js";

async function largestBlob(): Promise<string> {
  const layout = await debianOciLayout();
  const dir = path.join(layout.dir, "blobs", "sha256");
  let best = "";
  let size = -1;
  for (const n of readdirSync(dir)) {
    const s = statSync(path.join(dir, n)).size;
    if (s > size) [best, size] = [path.join(dir, n), s];
  }
  return best;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const runsAt = argv.indexOf("--runs");
  const runs = runsAt >= 0 ? Number(argv[runsAt + 1]) : 3;
  const layer = argv.find((a, i) => !a.startsWith("--") && argv[i - 1] !== "--runs") ?? (await largestBlob());
  const base = mkdtempSync(path.join(process.env.KILN_BENCH_DIR ?? os.tmpdir(), "kiln-bench-extract-"));
  const tarTimes: number[] = [];
  const kilnTimes: number[] = [];
  let files = 0;
  try {
    for (let r = 0; r < runs; r++) {
      const a = path.join(base, `tar-${r}`);
      const b = path.join(base, `kiln-${r}`);
      execFileSync("mkdir", ["-p", a, b]);
      let t = process.hrtime.bigint();
      execFileSync("tar", ["-xzf", layer, "-C", a, "--same-owner", "-p", "--xattrs", "--xattrs-include=*"]);
      tarTimes.push(Number(process.hrtime.bigint() - t) / 1e6);
      t = process.hrtime.bigint();
      const index = new FileIndex();
      await applyLayer(b, await decompressAuto(createReadStream(layer)), { index });
      kilnTimes.push(Number(process.hrtime.bigint() - t) / 1e6);
      files = index.size;
      rmSync(a, { recursive: true, force: true });
      rmSync(b, { recursive: true, force: true });
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  const tm = median(tarTimes);
  const km = median(kilnTimes);
  console.log(`layer ${layer} (${(statSync(layer).size / 1e6).toFixed(1)} MB compressed, ${files} paths)`);
  console.log(`tar -xzf   median ${tm.toFixed(0)} ms  runs ${tarTimes.map((x) => x.toFixed(0)).join(" ")}`);
  console.log(`kiln apply median ${km.toFixed(0)} ms  runs ${kilnTimes.map((x) => x.toFixed(0)).join(" ")}`);
  console.log(`ratio kiln/tar = ${(km / tm).toFixed(2)}x (goal <= 1.2x)`);
}

await main();
