import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { conformanceDir, repoRoot } from "../support/tmp.js";
import { kanikoCases } from "../differential/corpus.js";

// Keeps docs/buildkit-checklist.md honest: every checklist item appears exactly once with a status, every
// referenced test exists (file + test name), every differential case exists and is built, and the totals
// line matches the page.

/** Item ids of the shared checklist: section number + position of the checkbox in that section. */
function checklistIds(text: string): string[] {
  const ids: string[] = [];
  let section = "";
  let k = 0;
  for (const line of text.split("\n")) {
    const h = /^## (\d+)\./.exec(line);
    if (h) {
      section = h[1] ?? "";
      k = 0;
    } else if (line.startsWith("- [ ] ")) ids.push(`${section}.${++k}`);
  }
  return ids;
}

interface Item {
  id: string;
  lines: string[];
}

function parseMap(text: string): { items: Item[]; refs: Map<string, { file: string; name: string }> } {
  const items: Item[] = [];
  const refs = new Map<string, { file: string; name: string }>();
  let current: Item | undefined;
  for (const line of text.split("\n")) {
    const h = /^### (\d+\.\d+) /.exec(line);
    if (h) {
      current = { id: h[1] ?? "", lines: [] };
      items.push(current);
      continue;
    }
    if (line.startsWith("## ")) current = undefined;
    if (current && line.startsWith("- ")) current.lines.push(line);
    const row = /^\|\s*([A-Z]\d+)\s*\|\s*`([^`]+)`\s*\|\s*(.+?)\s*\|$/.exec(line);
    if (row) {
      // Markdown escapes (prettier writes `\_`) are not part of the test name.
      const name = (row[3] ?? "").replace(/\\(.)/g, "$1");
      assert.ok(!refs.has(row[1] ?? ""), `reference ${row[1]} defined twice`);
      refs.set(row[1] ?? "", { file: row[2] ?? "", name });
    }
  }
  return { items, refs };
}

const STATUSES = ["covered", "diff", "different", "not implemented", "known bug", "fixed"] as const;

test("docs/buildkit-checklist.md maps every checklist item, and every reference resolves", () => {
  const root = repoRoot();
  const checklist = readFileSync(path.join(conformanceDir(), "buildkit-frontend-checklist.md"), "utf8");
  const doc = readFileSync(path.join(root, "docs", "buildkit-checklist.md"), "utf8");
  const ids = checklistIds(checklist);
  assert.equal(ids.length, 98, "the shared checklist has 98 items");
  const { items, refs } = parseMap(doc);

  // Every id exactly once, in the checklist's order.
  assert.deepEqual(
    items.map((i) => i.id),
    ids,
  );

  // Every referenced test file exists and contains the test name.
  for (const [id, ref] of refs) {
    const file = path.join(root, ref.file);
    assert.ok(existsSync(file), `${id}: ${ref.file} does not exist`);
    assert.ok(readFileSync(file, "utf8").includes(ref.name), `${id}: "${ref.name}" is not a test in ${ref.file}`);
  }

  const kaniko = new Map(kanikoCases().map((c) => [c.name, c]));
  const ownCases = readFileSync(path.join(root, "test", "differential", "own-cases.ts"), "utf8");
  const known = readFileSync(path.join(root, "test", "differential", "known.ts"), "utf8");
  const used = new Set<string>();
  const counts = { covered: 0, different: 0, notImplemented: 0, knownBugs: 0, notCovered: 0 };
  for (const item of items) {
    let hasEvidence = false;
    let hasDifferent = false;
    let hasNotImplemented = false;
    for (const line of item.lines) {
      const m = /^- ([a-z ]+): (.*)$/.exec(line);
      assert.ok(m, `${item.id}: unreadable status line: ${line}`);
      const [, status = "", rest = ""] = m;
      assert.ok((STATUSES as readonly string[]).includes(status), `${item.id}: unknown status "${status}"`);
      if (status === "covered") {
        for (const ref of rest.split(",").map((s) => s.trim())) {
          assert.ok(refs.has(ref), `${item.id}: unknown test reference ${ref}`);
          used.add(ref);
        }
        hasEvidence = true;
      } else if (status === "diff") {
        for (const name of rest.split(",").map((s) => s.trim())) {
          if (name.startsWith("own/")) {
            const at = ownCases.indexOf(`name: "${name.slice(4)}",`);
            assert.ok(at >= 0, `${item.id}: no differential case ${name}`);
            const block = ownCases.slice(at, ownCases.indexOf("dockerfile:", at));
            assert.ok(!block.includes("skip:"), `${item.id}: ${name} is skipped, it proves nothing`);
          } else {
            const c = kaniko.get(name);
            assert.ok(c, `${item.id}: no differential case ${name}`);
            assert.equal(c.skip, undefined, `${item.id}: ${name} is skipped, it proves nothing`);
            assert.ok(!known.includes(name.slice("kaniko/".length)), `${item.id}: ${name} is a known difference`);
          }
        }
        hasEvidence = true;
      } else if (status === "different") hasDifferent = true;
      else if (status === "not implemented") hasNotImplemented = true;
      else if (status === "known bug") counts.knownBugs++;
    }
    assert.ok(
      hasEvidence || hasDifferent || hasNotImplemented,
      `${item.id}: NOT COVERED (no test, no differential case, no stated difference)`,
    );
    if (hasEvidence) counts.covered++;
    if (hasEvidence && hasDifferent) counts.different++;
    if (hasNotImplemented && !hasEvidence) counts.notImplemented++;
    if (!hasEvidence && !hasNotImplemented) counts.notCovered++;
  }
  for (const id of refs.keys()) assert.ok(used.has(id), `reference ${id} is defined but never used`);

  const totals =
    `**Totals: ${items.length} items; ${counts.covered} covered by tests (${counts.different} of them also list a ` +
    `deliberate difference); ${counts.notImplemented} not implemented (optional); ${counts.knownBugs} known bugs; ` +
    `${counts.notCovered} not covered.**`;
  assert.ok(doc.replace(/\n/g, " ").includes(totals), `the totals line must read:\n${totals}`);
});
