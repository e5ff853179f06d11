/** Aggregation of samples into medians and ratios, the goal checks, and the Markdown table. */
import { median } from "./measure.js";

/** One measured run of one builder (phases only for kiln). */
export interface RunRecord {
  wallMs: number;
  cpuMs: number;
  rssKb: number;
  phases?: Record<string, number>;
}

/** Medians of one builder on one workload row. */
export interface BuilderStats {
  runs: RunRecord[];
  wallMs: number | null;
  cpuMs: number | null;
  rssMb: number | null;
  /** Median ms per kiln phase. */
  phases?: Record<string, number>;
  /** Why there is no figure (build failed, feature not implemented). */
  note?: string;
}

/** One row group of the results: a workload in one variant. */
export interface RowResult {
  workload: string;
  title: string;
  variant: string;
  builders: Record<string, BuilderStats>;
  /** kiln wall time / peer wall time, per peer. */
  ratios: Record<string, number | null>;
}

/** A goal from issue #12 (or #4) and whether this run met it. */
export interface GoalResult {
  goal: string;
  scope: string;
  figure: string;
  met: boolean | null;
}

/** Computes medians over runs (null when there are none). */
export function stats(runs: RunRecord[], note?: string): BuilderStats {
  if (runs.length === 0) return { runs, wallMs: null, cpuMs: null, rssMb: null, ...(note ? { note } : {}) };
  const phaseNames = new Set(runs.flatMap((r) => Object.keys(r.phases ?? {})));
  const phases: Record<string, number> = {};
  for (const p of phaseNames) phases[p] = median(runs.map((r) => r.phases?.[p] ?? 0));
  return {
    runs,
    wallMs: median(runs.map((r) => r.wallMs)),
    cpuMs: median(runs.map((r) => r.cpuMs)),
    rssMb: median(runs.map((r) => r.rssKb)) / 1024,
    ...(phaseNames.size > 0 ? { phases } : {}),
    ...(note ? { note } : {}),
  };
}

/** kiln/peer wall-time ratios for a row. */
export function ratios(builders: Record<string, BuilderStats>): Record<string, number | null> {
  const kilnKey = Object.keys(builders).find((b) => b.startsWith("kiln")) ?? "kiln";
  const k = builders[kilnKey]?.wallMs ?? null;
  const out: Record<string, number | null> = {};
  for (const [name, s] of Object.entries(builders)) {
    if (name === kilnKey) continue;
    out[name] = k !== null && s.wallMs ? k / s.wallMs : null;
  }
  return out;
}

const sec = (ms: number | null): string => (ms === null ? "—" : (ms / 1000).toFixed(2));
const mb = (x: number | null): string => (x === null ? "—" : x.toFixed(0));
const ratio = (x: number | null | undefined): string => (x === null || x === undefined ? "—" : x.toFixed(2));

/** The results as one Markdown table (a row per builder per workload/variant). */
export function markdownTable(rows: RowResult[]): string {
  const lines = [
    "| workload | variant | builder | wall s | CPU s | peak RSS MB | kiln/peer (wall) | note |",
    "|---|---|---|---:|---:|---:|---:|---|",
  ];
  for (const r of rows) {
    for (const [name, s] of Object.entries(r.builders)) {
      lines.push(
        `| ${r.workload} | ${r.variant} | ${name} | ${sec(s.wallMs)} | ${sec(s.cpuMs)} | ${mb(s.rssMb)} | ${
          name.startsWith("kiln") ? "" : ratio(r.ratios[name])
        } | ${s.note ?? ""} |`,
      );
    }
  }
  return lines.join("\n");
}

/** kiln's per-phase profile (median ms) for every row where kiln ran. */
export function phaseTable(rows: RowResult[]): string {
  const names = ["pull", "extract", "store", "run", "copy", "snapshot", "compress", "push", "write"];
  const lines = [
    `| workload | variant | kiln wall ms | ${names.join(" | ")} | other |`,
    `|---|---|---:|${names.map(() => "---:").join("|")}|---:|`,
  ];
  for (const r of rows) {
    for (const [name, s] of Object.entries(r.builders)) {
      if (!name.startsWith("kiln") || !s.phases || s.wallMs === null) continue;
      const ph = s.phases;
      const known = names.reduce((acc, n) => acc + (ph[n] ?? 0), 0);
      lines.push(
        `| ${r.workload} | ${r.variant}${name === "kiln" ? "" : ` (${name})`} | ${s.wallMs.toFixed(0)} | ${names
          .map((n) => (ph[n] === undefined ? "" : ph[n].toFixed(0)))
          .join(" | ")} | ${(s.wallMs - known).toFixed(0)} |`,
      );
    }
  }
  return lines.join("\n");
}

/** The goals table. */
export function goalTable(goals: GoalResult[]): string {
  const lines = ["| goal | scope | measured | met? |", "|---|---|---|---|"];
  for (const g of goals)
    lines.push(`| ${g.goal} | ${g.scope} | ${g.figure} | ${g.met === null ? "n/a" : g.met ? "met" : "**missed**"} |`);
  return lines.join("\n");
}
