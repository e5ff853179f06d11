import { spawn } from "node:child_process";
import { constants } from "node:os";
import { KilnError } from "../common/errors.js";
import { envObject } from "./spawn-helper.js";
import type { RunIo, RunResult } from "./types.js";

const ESCALATE_MS = 2000;

/** A command run in place without the helper (supplementary groups cannot be set from Node). */
export interface DirectInvocation {
  argv: string[];
  env: string[];
  /** Host directory to run in. */
  cwd: string;
  uid: number;
  gid: number;
}

function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, sig);
  } catch {
    // the group is already gone
  }
}

/**
 * Runs a command directly (in-place back-end when no kiln-exec helper is available): in its own
 * process group, which is SIGKILLed when the command exits so that background processes it left
 * behind die with it.
 * @throws KilnError RUN_SETUP_FAILED when the command cannot be started.
 */
export function runDirect(inv: DirectInvocation, io: RunIo, signal?: AbortSignal): Promise<RunResult> {
  return new Promise<RunResult>((resolve, reject) => {
    const [file, ...args] = inv.argv;
    if (file === undefined) {
      reject(new KilnError("RUN_SETUP_FAILED", "RUN has an empty command"));
      return;
    }
    const sameUser = process.getuid?.() === inv.uid && process.getgid?.() === inv.gid;
    const child = spawn(file, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: envObject(inv.env),
      cwd: inv.cwd,
      detached: true,
      ...(sameUser ? {} : { uid: inv.uid, gid: inv.gid }),
    });
    let escalate: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      killGroup(child.pid, "SIGTERM");
      escalate ??= setTimeout(() => killGroup(child.pid, "SIGKILL"), ESCALATE_MS);
    };
    // The group is detached, so nothing else ends it if kiln exits first (process.exit on a second
    // Ctrl-C): 'exit' listeners run synchronously before the process goes.
    const onExit = (): void => killGroup(child.pid, "SIGKILL");
    process.once("exit", onExit);
    const finish = (): void => {
      signal?.removeEventListener("abort", onAbort);
      process.removeListener("exit", onExit);
      if (escalate !== undefined) clearTimeout(escalate);
    };
    child.stdout.on("data", (chunk: Buffer) => io.stdout(chunk));
    child.stderr.on("data", (chunk: Buffer) => io.stderr(chunk));
    child.on("error", (err: NodeJS.ErrnoException) => {
      finish();
      const what =
        err.code === "ENOENT"
          ? `${file}: no such file or directory (is it installed, and on PATH?), or ${inv.cwd} does not exist`
          : `cannot run ${file}: ${err.message}`;
      reject(new KilnError("RUN_SETUP_FAILED", what, { cause: err }));
    });
    child.on("exit", () => killGroup(child.pid, "SIGKILL"));
    child.on("close", (code, sig) => {
      finish();
      if (sig !== null) resolve({ exitCode: 128 + constants.signals[sig], signal: sig });
      else resolve({ exitCode: code ?? 1 });
    });
    if (signal !== undefined) {
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    }
  });
}
