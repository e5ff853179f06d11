/**
 * Fidelity: every case built by `docker build` (BuildKit) and by kiln must give the same image (see
 * docs/fidelity.md). Prints the table and writes it to .tmp/differential-report.txt. Fails on any
 * unexplained difference. KILN_DIFF_CASES (comma-separated substrings of case names) narrows the set;
 * KILN_DIFF_JOBS (default 2) sets how many cases build at the same time.
 */
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { dockerdAvailable } from "../support/dockerd.js";
import { repoRoot } from "../support/tmp.js";
import { kanikoCases, type DiffCase } from "./corpus.js";
import { runCase, startHarness, type CaseResult } from "./harness.js";
import { ownCases } from "./own-cases.js";
import { formatTable } from "./table.js";

function selected(all: DiffCase[]): DiffCase[] {
  const filter = process.env["KILN_DIFF_CASES"];
  if (filter === undefined || filter === "") return all;
  const parts = filter
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  return all.filter((c) => parts.some((p) => c.name.includes(p)));
}

test("kiln builds the same images as docker build", { timeout: 15 * 60_000 }, async (t) => {
  if (!dockerdAvailable()) {
    t.skip("dockerd/containerd/runc not installed (scripts/install-deps.sh installs docker.io)");
    return;
  }
  const own = await ownCases();
  const cases = selected([...own.cases, ...kanikoCases()]);
  const h = await startHarness();
  // Cases are independent (own temp dirs, own image tags): run KILN_DIFF_JOBS (default 2) at a time.
  const jobs = Math.max(1, Number(process.env["KILN_DIFF_JOBS"] ?? "2") || 1);
  const results: CaseResult[] = new Array<CaseResult>(cases.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < cases.length; i = next++) {
      const c = cases[i];
      if (c !== undefined && c.duplicateOf === undefined) results[i] = await runCase(h, c);
    }
  };
  try {
    await Promise.all(Array.from({ length: jobs }, worker));
  } finally {
    await h.stop();
    await own.cleanup();
  }
  cases.forEach((c, i) => {
    if (c.duplicateOf === undefined) return;
    const original = results.find((r) => r !== undefined && r.name === c.duplicateOf);
    results[i] = {
      name: c.name,
      status: original?.status ?? "skipped",
      details: [`same inputs as ${c.duplicateOf}: its result`, ...(original?.details ?? [])],
      seconds: 0,
    };
  });
  const table = formatTable(results);
  const report = path.join(repoRoot(), ".tmp", "differential-report.txt");
  await mkdir(path.dirname(report), { recursive: true });
  await writeFile(report, table + "\n");
  console.log(table);
  const failing = results.filter((r) => r.status === "differs");
  assert.deepEqual(
    failing.map((r) => `${r.name}: ${r.details.slice(0, 3).join("; ")}`),
    [],
    "unexplained differences (fix kiln, or record them in test/differential/known.ts with a reason)",
  );
  const stale = results.filter((r) => r.details.some((d) => d.startsWith("stale known-difference")));
  assert.deepEqual(
    stale.map((r) => r.name),
    [],
    "known differences that are gone: remove them from known.ts",
  );
});
