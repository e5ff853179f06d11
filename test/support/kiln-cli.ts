/**
 * Runs kiln's command-line entry points (`bin/kiln`, `bin/executor`, `bin/warmer`) as child processes, the
 * way users and CI pipelines do. Needs a built `dist/` (npm run build).
 */
import { spawn } from "node:child_process";
import * as path from "node:path";
import { constants } from "node:os";
import { repoRoot } from "./tmp.js";

/** Options for {@link runKiln}. */
export interface RunKilnOptions {
  /** Variables added to (or, with value undefined, removed from) this process's environment. */
  env?: Record<string, string | undefined>;
  /** Working directory of the child; defaults to the repository root. */
  cwd?: string;
  /** Written to the child's stdin, which is then closed (stdin is empty when absent). */
  input?: string | Uint8Array;
  /** Which entry point to run: "kiln" (default), "executor" or "warmer". */
  bin?: "kiln" | "executor" | "warmer";
  /** Kill the child (SIGKILL) after this many milliseconds; default 300000. The result then has code 137. */
  timeoutMs?: number;
}

/** Outcome of one CLI run: the exit code (128 + signal number when killed by a signal) and all output. */
export interface RunKilnResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `<repo>/bin/<bin> ...args` with the same Node.js binary as the current process (so a test run on
 * Node 24 exercises the CLI on Node 24) and resolves when it exits, never rejecting on a non-zero exit.
 */
export function runKiln(args: string[], opts: RunKilnOptions = {}): Promise<RunKilnResult> {
  const root = repoRoot();
  const script = path.join(root, "bin", opts.bin ?? "kiln");
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      cwd: opts.cwd ?? root,
      env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 300_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const signo = signal !== null ? (constants.signals[signal] ?? 0) : 0;
      resolve({
        code: code ?? 128 + signo,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      });
    });
    // A child that exits without reading stdin makes the write fail with EPIPE: that is not an error here.
    child.stdin.on("error", () => undefined);
    child.stdin.end(opts.input ?? "");
  });
}
