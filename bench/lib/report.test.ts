import assert from "node:assert/strict";
import { test } from "node:test";
import { median, parsePhases } from "./measure.js";
import { markdownTable, ratios, stats } from "./report.js";

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
