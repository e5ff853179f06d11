import assert from "node:assert/strict";
import { test } from "node:test";
import { median, parsePhases } from "./measure.js";
import { markdownTable, phaseTable, ratios, stats } from "./report.js";

test("parsePhases sums kiln's phase debug lines per phase", () => {
  const log = [
    "DEBU[0000] phase pull: 336 ms",
    "DEBU[0001] phase snapshot: 10 ms",
    "DEBU[0001] phase snapshot: 209 ms",
    'DEBU[0001] registry: {"kind":"blob-pushed"}',
    "DEBU[0002] phase push: 234 ms",
  ].join("\n");
  assert.deepEqual(parsePhases(log), { pull: 336, snapshot: 219, push: 234 });
});

test("median of odd and even lists", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

test("stats, ratios and the table: kiln/peer wall ratio, notes for missing figures", () => {
  const builders = {
    kiln: stats([
      { wallMs: 1000, cpuMs: 500, rssKb: 102400, phases: { run: 100 } },
      { wallMs: 3000, cpuMs: 700, rssKb: 204800, phases: { run: 300 } },
    ]),
    "docker-buildkit": stats([{ wallMs: 4000, cpuMs: 100, rssKb: 1024 }]),
    "buildah-vfs": stats([], "exit 1: boom"),
  };
  assert.equal(builders.kiln.wallMs, 2000);
  assert.deepEqual(builders.kiln.phases, { run: 200 });
  const r = ratios(builders);
  assert.equal(r["docker-buildkit"], 0.5);
  assert.equal(r["buildah-vfs"], null);
  const md = markdownTable([{ workload: "w", title: "t", variant: "cold", builders, ratios: r }]);
  assert.match(md, /\| w \| cold \| docker-buildkit \| 4\.00 \| 0\.10 \| 1 \| 0\.50 \|/);
  assert.match(md, /\| w \| cold \| buildah-vfs \| — \| — \| — \| — \| exit 1: boom \|/);
});

test("parsePhases: a stage root mounted from the layer store is the store phase, unless layers were extracted", () => {
  const log = [
    "INFO[0000] Layer store /s: 1 of 1 layers of stage 0 found, 0 extracted; root mounted in 180 ms",
    "INFO[0001] Layer store /s: 2 of 2 layers of stage 1 found, 0 extracted; root mounted in 20 ms",
    "INFO[0001] Layer store /s: 0 of 1 layers of stage 2 found, 1 extracted; root mounted in 900 ms",
    "DEBU[0001] phase extract: 900 ms",
  ].join("\n");
  assert.deepEqual(parsePhases(log), { extract: 900, store: 200 });
});

test("phaseTable shows the store phase and leaves the rest as other", () => {
  const kiln = stats([{ wallMs: 1000, cpuMs: 1, rssKb: 1, phases: { store: 200, run: 100 } }]);
  const md = phaseTable([{ workload: "w", title: "t", variant: "warm", builders: { kiln }, ratios: {} }]);
  assert.match(md, /\| pull \| extract \| store \| run \|/);
  assert.ok(md.includes("| w | warm | 1000 |  |  | 200 | 100 |  |  |  |  |  | 700 |"), md);
});
