/** Formats the differential results as a plain-text table plus the N-of-M summary line. */
import type { CaseResult, CaseStatus } from "./harness.js";

const ORDER: CaseStatus[] = ["identical", "both-fail", "known", "unsupported", "differs", "skipped"];

/** The summary: identical (incl. both-fail) of runnable (everything not skipped), and a count per status. */
export function summarize(results: CaseResult[]): string {
  const count = (s: CaseStatus): number => results.filter((r) => r.status === s).length;
  const runnable = results.length - count("skipped");
  const same = count("identical") + count("both-fail");
  const per = ORDER.map((s) => `${s} ${count(s)}`).join(", ");
  return `fidelity: ${same} of ${runnable} runnable cases identical to docker build (${results.length} cases: ${per})`;
}

/** One line per case (status, seconds, name), then its details indented; the summary last. */
export function formatTable(results: CaseResult[]): string {
  const width = Math.max(4, ...results.map((r) => r.name.length));
  const lines = [
    `${"case".padEnd(width)}  ${"status".padEnd(11)}  ${"secs".padStart(5)}  ${"d/k/c".padEnd(14)}  details`,
  ];
  for (const r of results) {
    const [first = "", ...rest] = r.details;
    const more = rest.length > 12 ? [...rest.slice(0, 12), `… ${rest.length - 12} more`] : rest;
    const p = r.phases;
    const split =
      p === undefined || r.status === "skipped"
        ? ""
        : `${p.docker.toFixed(1)}/${p.kiln.toFixed(1)}/${p.compare.toFixed(1)}`;
    lines.push(
      `${r.name.padEnd(width)}  ${r.status.padEnd(11)}  ${r.seconds.toFixed(1).padStart(5)}  ${split.padEnd(14)}  ${first}`,
    );
    for (const d of more) lines.push(`${"".padEnd(width + 38)}${d}`);
  }
  const total = results.reduce((a, r) => a + r.seconds, 0);
  lines.push("", "d/k/c = seconds in docker (build+save) / kiln (build) / reading and comparing the archives");
  lines.push(summarize(results) + ` in ${total.toFixed(0)} s`);
  return lines.join("\n");
}
