/**
 * Issue #5 figure 5: peak RSS while producing a 2 GiB layer (goal ≤ 200 MB). A root holding `--gib` GiB of
 * files (copies of the Debian base layer's uncompressed tar, so the data compresses like real content) is
 * turned into a layer by the production path — writeChangesTar → spoolLayer (gzip by default) — in a child
 * process whose peak RSS (getrusage maxrss, whole process including Node and the tsx loader) is printed.
 * Usage: npx tsx bench/fs-layer-rss.ts [--gib 2] [--compression gzip|zstd]
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";
import { FileIndex, changesTarStream, walkChanges } from "../src/fs/index.js";
import { spoolLayer } from "../src/image/index.js";
import { debianOciLayout } from "../test/support/base-images.js";
import { stringFlag } from "./lib/argv.js";

async function child(root: string, out: string, compression: "gzip" | "zstd"): Promise<void> {
  const t = Date.now();
  const changes = await walkChanges(root, new FileIndex());
  const layer = await spoolLayer(changesTarStream(root, changes), {
    dir: out,
    compression,
    mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
  });
  console.log(JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS, ms: Date.now() - t, size: layer.size }));
}

async function main(): Promise<void> {
  const compression = (stringFlag("--compression") ?? "gzip") as "gzip" | "zstd";
  if (process.argv.includes("--child")) {
    await child(stringFlag("--root") as string, stringFlag("--out") as string, compression);
    return;
  }
  const gib = Number(stringFlag("--gib") ?? 2);
  const base = mkdtempSync(path.join(process.env.KILN_BENCH_DIR ?? os.tmpdir(), "kiln-bench-rss-"));
  try {
    const root = path.join(base, "root");
    mkdirSync(path.join(root, "data"), { recursive: true });
    const layout = await debianOciLayout();
    const dir = path.join(layout.dir, "blobs", "sha256");
    const biggest = readdirSync(dir)
      .map((n) => path.join(dir, n))
      .sort((a, b) => statSync(b).size - statSync(a).size)[0] as string;
    const tarFile = path.join(root, "data", "part-0");
    writeFileSync(tarFile, gunzipSync(await readFile(biggest)));
    const partSize = statSync(tarFile).size;
    const parts = Math.ceil((gib * 1024 ** 3) / partSize);
    for (let i = 1; i < parts; i++) copyFileSync(tarFile, path.join(root, "data", `part-${i}`));
    const total = parts * partSize;
    const run = (extra: string[]): { maxRssKiB: number; ms: number; size?: number } =>
      JSON.parse(
        execFileSync(
          process.execPath,
          [
            ...process.execArgv,
            import.meta.filename,
            "--child",
            "--root",
            root,
            "--out",
            path.join(base, "out"),
            "--compression",
            compression,
            ...extra,
          ],
          { encoding: "utf8", maxBuffer: 1 << 20 },
        ),
      ) as { maxRssKiB: number; ms: number; size?: number };
    const r = run([]);
    console.log(
      `layer of ${(total / 1024 ** 3).toFixed(2)} GiB (${compression}): peak RSS ${(r.maxRssKiB / 1024).toFixed(0)} MB ` +
        `${(r.ms / 1000).toFixed(1)} s, ` +
        `compressed ${((r.size ?? 0) / 1e6).toFixed(0)} MB; goal <= 200 MB: ${r.maxRssKiB / 1024 <= 200 ? "met" : "NOT met"}`,
    );
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

await main();
