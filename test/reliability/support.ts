/**
 * Shared helpers of the reliability and security suites: a seeded PRNG, tiny whole builds through
 * `bin/kiln`, peak-RSS measurement of the kiln child, and the figures table every test file prints
 * (scenario × runs × passed) and appends to `.tmp/reliability/figures.jsonl` for docs/reliability.md.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { appendFile, mkdir, readFile, rm } from "node:fs/promises";
import * as path from "node:path";
import { constants } from "node:os";
import type { Readable } from "node:stream";
import { pathToFileURL } from "node:url";
import { repoRoot } from "../support/tmp.js";

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
export function seededRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One row of the figures table. */
export interface FigureRow {
  suite: string;
  scenario: string;
  runs: number;
  passed: number;
  /** Free-form extra figure (e.g. "inputs 100000 in 41.2 s", "max RSS 92 MB"). */
  note?: string;
}

/** Collects rows for one test file; `flush()` prints them as a table and appends them to the JSONL file. */
export class Figures {
  readonly rows: FigureRow[] = [];
  constructor(readonly suite: string) {}

  add(scenario: string, runs: number, passed: number, note?: string): void {
    this.rows.push({ suite: this.suite, scenario, runs, passed, ...(note !== undefined ? { note } : {}) });
  }

  /** Prints the table (console.log: test output only) and appends the rows to `.tmp/reliability/figures.jsonl`. */
  async flush(): Promise<void> {
    if (this.rows.length === 0) return;
    const w = Math.max(8, ...this.rows.map((r) => r.scenario.length));
    const lines = [
      `[figures] ${this.suite}`,
      `[figures] ${"scenario".padEnd(w)}  runs  passed  note`,
      ...this.rows.map(
        (r) =>
          `[figures] ${r.scenario.padEnd(w)}  ${String(r.runs).padStart(4)}  ${String(r.passed).padStart(6)}  ${r.note ?? ""}`,
      ),
    ];
    console.log(lines.join("\n"));
    const dir = path.join(repoRoot(), ".tmp", "reliability");
    await mkdir(dir, { recursive: true });
    const stamp = new Date().toISOString();
    await appendFile(
      path.join(dir, "figures.jsonl"),
      this.rows.map((r) => JSON.stringify({ ...r, at: stamp })).join("\n") + "\n",
    );
  }
}

/** Outcome of {@link runKilnMeasured}. */
export interface MeasuredRun {
  code: number;
  stdout: string;
  stderr: string;
  /** Peak RSS of the kiln process in kB (0 when unknown). */
  maxRssKb: number;
  /** The child's pid (valid while it runs). */
  pid: number;
}

/** Options of {@link runKilnMeasured}. */
export interface MeasuredOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  timeoutMs?: number;
  /** Piped into the child's stdin (e.g. `--context tar://stdin`); the child may stop reading early. */
  stdin?: Readable;
  /** Called once the child runs (e.g. to send it a signal later). */
  onSpawn?: (pid: number, output: () => string) => void;
}

/** The compiled RSS probe (in dist/), or undefined when running from sources without a build. */
function probeUrl(): string | undefined {
  const p = path.join(repoRoot(), "dist", "test", "reliability", "rss-probe.js");
  return existsSync(p) ? pathToFileURL(p).href : undefined;
}

/**
 * Runs `bin/kiln …args` like test/support/kiln-cli.ts does, and also measures the child's peak RSS
 * (through the rss-probe preload) and exposes its pid for signal tests.
 */
export async function runKilnMeasured(args: string[], opts: MeasuredOptions = {}): Promise<MeasuredRun> {
  const root = repoRoot();
  const rssFile = path.join(root, ".tmp", "reliability", `rss-${process.pid}-${Date.now()}-${Math.random()}.txt`);
  await mkdir(path.dirname(rssFile), { recursive: true });
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const probe = probeUrl();
  if (probe !== undefined) {
    env["NODE_OPTIONS"] = `${env["NODE_OPTIONS"] ?? ""} --import ${probe}`.trim();
    env["KILN_RSS_FILE"] = rssFile;
  }
  const result = await new Promise<Omit<MeasuredRun, "maxRssKb">>((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(root, "bin", "kiln"), ...args], {
      cwd: opts.cwd ?? root,
      env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    // kiln may refuse a stdin stream and exit before reading it all: EPIPE is expected then.
    child.stdin.on("error", () => undefined);
    if (opts.stdin) {
      opts.stdin.on("error", () => undefined);
      opts.stdin.pipe(child.stdin);
      child.on("close", () => opts.stdin?.destroy());
    } else child.stdin.end();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    if (child.pid !== undefined)
      opts.onSpawn?.(child.pid, () => Buffer.concat(err).toString("utf8") + Buffer.concat(out).toString("utf8"));
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const signo = signal !== null ? (constants.signals[signal] ?? 0) : 0;
      resolve({
        code: code ?? 128 + signo,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        pid: child.pid ?? 0,
      });
    });
  });
  let maxRssKb = 0;
  try {
    for (const l of (await readFile(rssFile, "utf8")).split("\n")) maxRssKb = Math.max(maxRssKb, Number(l) || 0);
  } catch {
    // No probe output (killed by SIGKILL, or no build): unknown.
  }
  await rm(rssFile, { force: true });
  return { ...result, maxRssKb };
}
