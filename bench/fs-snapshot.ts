/**
 * Issue #5 figure 4: snapshot after a step that changes 10 files in a root of 100,000 files.
 * - walk back-end (walkChanges) vs `find ROOT -printf '%s %T@ %C@ %i\n' > /dev/null` on the same tree (goal ≤ 2×);
 * - overlay back-end (upper-dir diff + merge; goal ≤ 50 ms), when root + overlay mounts + native/kiln-exec work.
 * Usage: npx tsx bench/fs-snapshot.ts [--files N] [--runs N]
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { FileIndex, walkChanges } from "../src/fs/index.js";
import { OverlaySnapshotter, overlayHelperArgument } from "../src/fs/snapshot/index.js";
import { numberFlag } from "./lib/argv.js";

function ms(t: bigint): number {
  return Number(process.hrtime.bigint() - t) / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

const HELPER = path.resolve(import.meta.dirname, "..", "native", "kiln-exec");

async function main(): Promise<void> {
  const files = numberFlag("--files", 100_000);
  const runs = numberFlag("--runs", 5);
  const base = mkdtempSync(path.join(process.env.KILN_BENCH_DIR ?? os.tmpdir(), "kiln-bench-snap-"));
  const root = path.join(base, "root");
  try {
    const perDir = 500;
    for (let i = 0; i < files; i++) {
      const d = path.join(root, "usr", `d${Math.floor(i / perDir)}`);
      if (i % perDir === 0) mkdirSync(d, { recursive: true });
      writeFileSync(path.join(d, `f${i}`), "x");
    }
    mkdirSync(path.join(root, "bin"), { recursive: true });
    if (existsSync("/bin/busybox")) copyFileSync("/bin/busybox", path.join(root, "bin", "busybox"));
    const index = await FileIndex.fromWalk(root);
    console.log(`root: ${index.size} paths`);
    const step = (k: number): string =>
      Array.from({ length: 10 }, (_, j) => `echo ${k} > /usr/d${j * 7}/f${j * 7 * perDir + k}`).join("; ");

    const findTimes: number[] = [];
    const walkTimes: number[] = [];
    for (let r = 0; r < runs; r++) {
      for (let j = 0; j < 10; j++)
        writeFileSync(path.join(root, "usr", `d${j * 7}`, `f${j * 7 * perDir + r}`), `w${r}`);
      let t = process.hrtime.bigint();
      spawnSync("sh", ["-c", `find '${root}' -printf '%s %T@ %C@ %i\\n' > /dev/null`]);
      findTimes.push(ms(t));
      t = process.hrtime.bigint();
      const c = await walkChanges(root, index, { update: true });
      walkTimes.push(ms(t));
      if (c.changed.filter((p) => !p.endsWith(`/d${0}`)).length < 10)
        throw new Error(`walk missed changes: ${c.changed.join(" ")}`);
    }
    const fm = median(findTimes);
    const wm = median(walkTimes);
    console.log(`find -printf   median ${fm.toFixed(0)} ms  runs ${findTimes.map((x) => x.toFixed(0)).join(" ")}`);
    console.log(`walk back-end  median ${wm.toFixed(0)} ms  runs ${walkTimes.map((x) => x.toFixed(0)).join(" ")}`);
    console.log(`ratio walk/find = ${(wm / fm).toFixed(2)}x (goal <= 2x)`);

    const canOverlay = process.getuid?.() === 0 && existsSync(HELPER) && existsSync(path.join(root, "bin", "busybox"));
    if (!canOverlay) {
      console.log("overlay back-end: skipped (needs root, native/kiln-exec and /bin/busybox)");
      return;
    }
    const ovl = new OverlaySnapshotter();
    const snapTimes: number[] = [];
    const stepTimes: number[] = [];
    for (let r = 0; r < runs; r++) {
      const dirs = await ovl.beforeRun(root);
      let t = process.hrtime.bigint();
      execFileSync(HELPER, [
        "--mountns",
        "--overlay",
        overlayHelperArgument(dirs),
        "--root",
        root,
        "--",
        "/bin/busybox",
        "sh",
        "-c",
        step(100 + r),
      ]);
      stepTimes.push(ms(t));
      t = process.hrtime.bigint();
      const c = await ovl.afterRun(root, index);
      snapTimes.push(ms(t));
      const files = c.changed.filter((p) => /\/f\d+$/.test(p));
      if (files.length !== 10) throw new Error(`overlay found ${files.length} changed files: ${c.changed.join(" ")}`);
    }
    const sm = median(snapTimes);
    console.log(`overlay step (mount+run) median ${median(stepTimes).toFixed(0)} ms`);
    console.log(
      `overlay snapshot median ${sm.toFixed(1)} ms  runs ${snapTimes.map((x) => x.toFixed(1)).join(" ")} (goal <= 50 ms)`,
    );
    console.log(`ratio overlay/find = ${(sm / fm).toFixed(3)}x`);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

await main();
