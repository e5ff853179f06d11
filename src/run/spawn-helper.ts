import { spawn } from "node:child_process";
import { constants } from "node:os";
import type { Readable } from "node:stream";
import { KilnError } from "../common/errors.js";
import { describeHelperError, parseHelperStatus, signalName } from "./helper-status.js";
import type { RunIo, RunResult } from "./types.js";

/** Backstop after an abort: the helper itself escalates SIGTERM to SIGKILL after 2 s. */
const ABORT_BACKSTOP_MS = 5000;

/** Turns "K=V" strings into an environment object (later entries win; entries without "=" are dropped). */
export function envObject(env: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of env) {
    const eq = kv.indexOf("=");
    if (eq > 0) out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

/** What one helper invocation needs besides its options. */
export interface HelperInvocation {
  helper: string;
  /** Helper options (before `--`). */
  options: string[];
  argv: string[];
  env: string[];
  /** For error messages: the working directory inside the root. */
  cwd: string;
}

/**
 * Runs the kiln-exec helper with the command's exact environment and resolves with the command's exit
 * status as reported on the status pipe (fd 3).
 * @throws KilnError RUN_SETUP_FAILED when the helper reports that it could not start the command.
 */
export function runHelper(inv: HelperInvocation, io: RunIo, signal?: AbortSignal): Promise<RunResult> {
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(inv.helper, [...inv.options, "--", ...inv.argv], {
      stdio: ["ignore", "pipe", "pipe", "pipe"],
      env: envObject(inv.env),
    });
    let statusText = "";
    let backstop: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      child.kill("SIGTERM");
      backstop ??= setTimeout(() => child.kill("SIGKILL"), ABORT_BACKSTOP_MS);
    };
    const finish = (): void => {
      signal?.removeEventListener("abort", onAbort);
      if (backstop !== undefined) clearTimeout(backstop);
    };
    child.stdout?.on("data", (chunk: Buffer) => io.stdout(chunk));
    child.stderr?.on("data", (chunk: Buffer) => io.stderr(chunk));
    (child.stdio[3] as Readable).on("data", (chunk: Buffer) => {
      statusText += chunk.toString("utf8");
    });
    child.on("error", (err) => {
      finish();
      reject(
        new KilnError("RUN_SETUP_FAILED", `cannot start the RUN helper ${inv.helper}: ${err.message}`, { cause: err }),
      );
    });
    child.on("close", (code, sig) => {
      finish();
      const status = parseHelperStatus(statusText);
      if (status.error !== undefined) {
        const message = describeHelperError(status.error, inv.argv[0] ?? "", inv.cwd);
        reject(new KilnError("RUN_SETUP_FAILED", message, { cause: status.error }));
      } else if (status.signal !== undefined) {
        resolve({ exitCode: 128 + status.signal, signal: signalName(status.signal) });
      } else if (status.exitCode !== undefined) {
        resolve({ exitCode: status.exitCode });
      } else if (sig !== null) {
        resolve({ exitCode: 128 + constants.signals[sig], signal: sig });
      } else {
        resolve({ exitCode: code ?? 1 });
      }
    });
    if (signal !== undefined) {
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    }
  });
}
