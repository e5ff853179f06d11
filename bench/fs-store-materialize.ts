/**
 * Issue #14: where stage roots cannot be overlay mounts, is materialising a root from the layer store
 * (copying the stored trees, `COPYFILE_FICLONE` where the filesystem can clone) cheaper than extracting
 * the layers again? Same image (the big100k bench base), same filesystem, same run; prints both times.
 * Usage: npx tsx bench/fs-store-materialize.ts [oci-layout-dir] [--runs N]
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { FileIndex, LayerStore, applyLayer } from "../src/fs/index.js";
import { copyTree } from "../src/fs/layer-store/copy-tree.js";
import { readOciLayout } from "../src/image/index.js";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const runsAt = argv.indexOf("--runs");
  const runs = runsAt >= 0 ? Number(argv[runsAt + 1]) : 3;
  const layout =
    argv.find((a, i) => !a.startsWith("--") && argv[i - 1] !== "--runs") ??
    path.resolve(import.meta.dirname, "..", ".tmp", "bench", "cache", "big100k-oci");
  const img = await readOciLayout(layout);
  const base = mkdtempSync(path.join(process.env.KILN_BENCH_DIR ?? os.tmpdir(), "kiln-bench-store-"));
  const extract: number[] = [];
  const copy: number[] = [];
  try {
    const store = await LayerStore.open(path.join(base, "store"), { maxBytes: 1e12 });
    const trees: string[] = [];
    for (const l of img.layers) trees.push((await store.acquire(l.diffId, () => l.openUncompressed())).tree);
    for (let r = 0; r < runs; r++) {
      const a = path.join(base, `extract-${r}`);
      mkdirSync(a);
      let t = process.hrtime.bigint();
      const index = new FileIndex();
      for (const l of img.layers) await applyLayer(a, await l.openUncompressed(), { index });
      extract.push(Number(process.hrtime.bigint() - t) / 1e6);
      const b = path.join(base, `copy-${r}`);
      t = process.hrtime.bigint();
      // Lower bound of a copy materialisation: the trees copied in order (no whiteouts in this base).
      for (const [i, tree] of trees.entries()) await copyTree(tree, i === 0 ? b : path.join(b, ".next"));
      copy.push(Number(process.hrtime.bigint() - t) / 1e6);
      rmSync(a, { recursive: true, force: true });
      rmSync(b, { recursive: true, force: true });
    }
    const e = median(extract);
    const c = median(copy);
    console.log(
      `big100k (${img.layers.length} layers): extraction ${(e / 1000).toFixed(2)} s, copy from the store ${(c / 1000).toFixed(2)} s, copy/extraction ${(c / e).toFixed(2)}x (median of ${runs})`,
    );
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

await main();
