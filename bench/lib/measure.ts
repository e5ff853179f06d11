/**
 * Runs one command under GNU time and returns wall time, CPU time (user+sys of the command and every
 * descendant it waited for) and peak RSS, plus the output. Daemon-side costs (dockerd, containerd) are added
 * by the caller through {@link DaemonProbe}.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

/** One measured command. */
export interface Sample {
  wallMs: number;
  cpuMs: number;
  /** Peak resident set size of the largest process in the tree, in KiB (ru_maxrss). */
  rssKb: number;
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@link timed}. */
export interface TimedOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Kill the command after this many ms (default 15 min). */
  timeoutMs?: number;
}

const MAX_KEEP = 4 * 1024 * 1024;

function keep(buf: string, chunk: Buffer): string {
  const s = buf + chunk.toString("utf8");
  return s.length > MAX_KEEP ? s.slice(s.length - MAX_KEEP) : s;
}

/** Runs `cmd args` under `/usr/bin/time` and measures it. Never throws for a non-zero exit. */
export function timed(cmd: string, args: string[], opts: TimedOptions = {}): Promise<Sample> {
  const dir = mkdtempSync(path.join(tmpdir(), "kiln-bench-time-"));
  const out = path.join(dir, "time");
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn("/usr/bin/time", ["-f", "%U %S %M", "-o", out, cmd, ...args], {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout = keep(stdout, c)));
    child.stderr.on("data", (c: Buffer) => (stderr = keep(stderr, c)));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 15 * 60_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
      let user = 0;
      let sys = 0;
      let rss = 0;
      try {
        const last = readFileSync(out, "utf8").trim().split("\n").pop() ?? "";
        [user, sys, rss] = last.split(/\s+/).map(Number) as [number, number, number];
      } catch {
        // time(1) did not write its line (killed): leave zeros.
      }
      rmSync(dir, { recursive: true, force: true });
      resolve({ wallMs, cpuMs: (user + sys) * 1000, rssKb: rss, code: code ?? -1, stdout, stderr });
    });
  });
}

/** Adds two samples of commands run one after the other (e.g. `docker build` then `docker push`). */
export function sumSamples(a: Sample, b: Sample): Sample {
  return {
    wallMs: a.wallMs + b.wallMs,
    cpuMs: a.cpuMs + b.cpuMs,
    rssKb: Math.max(a.rssKb, b.rssKb),
    code: a.code !== 0 ? a.code : b.code,
    stdout: a.stdout + b.stdout,
    stderr: a.stderr + b.stderr,
  };
}

const CLK_TCK = 100;

/** CPU ms (self + reaped children) of one process from /proc/PID/stat; 0 when it is gone. */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state); utime..cstime are fields 14..17.
    const ticks = [11, 12, 13, 14].reduce((s, i) => s + Number(fields[i] ?? 0), 0);
    return (ticks * 1000) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** Current resident set size of one process in KiB; 0 when it is gone. */
export function processRssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * Accounts for work a daemon does on a client's behalf: CPU delta of the daemon pids (self + reaped
 * children) and their summed RSS sampled every 100 ms.
 */
export class DaemonProbe {
  private readonly pids: () => number[];
  private cpu0 = 0;
  private peak = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(pids: () => number[]) {
    this.pids = pids;
  }

  /** Starts a measurement window. */
  start(): void {
    this.cpu0 = this.pids().reduce((s, p) => s + processCpuMs(p), 0);
    this.peak = 0;
    const sample = (): void => {
      const rss = this.pids().reduce((s, p) => s + processRssKb(p), 0);
      if (rss > this.peak) this.peak = rss;
    };
    sample();
    this.timer = setInterval(sample, 100);
  }

  /** Ends the window: CPU ms used and peak summed RSS (KiB) of the daemons. */
  stop(): { cpuMs: number; rssKb: number } {
    if (this.timer) clearInterval(this.timer);
    const cpu1 = this.pids().reduce((s, p) => s + processCpuMs(p), 0);
    return { cpuMs: cpu1 - this.cpu0, rssKb: this.peak };
  }
}

/** Median of a non-empty list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/**
 * Sums kiln's `phase <name>: <ms> ms` debug lines per phase, plus a "store" phase: the time of stage roots
 * mounted from `--layer-store` with every layer found (`Layer store DIR: N of N layers … 0 extracted; root
 * mounted in MS ms`; a root with misses is already counted as "extract").
 */
export function parsePhases(log: string): Record<string, number> {
  const phases: Record<string, number> = {};
  const add = (name: string, ms: number): void => {
    phases[name] = (phases[name] ?? 0) + ms;
  };
  for (const m of log.matchAll(/phase ([a-z-]+): (\d+(?:\.\d+)?) ms/g)) add(m[1] as string, Number(m[2]));
  for (const m of log.matchAll(
    /Layer store [^\n]*?: \d+ of \d+ layers[^\n]*? (\d+) extracted[^\n]*? in (\d+(?:\.\d+)?) ms/g,
  ))
    if (Number(m[1]) === 0) add("store", Number(m[2]));
  return phases;
}
