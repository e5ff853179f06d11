import { spawn } from "node:child_process";
import { KilnError } from "../../common/errors.js";

/** Releases a lock taken by {@link lockFile}. */
export type Unlock = () => Promise<void>;

/**
 * Takes an exclusive flock(2) on `file` (created if missing) held by a util-linux `flock` child
 * process: the lock lives exactly as long as that child, which exits when its stdin closes — so a
 * crashed kiln never leaves a stale lock behind. With `wait` false, resolves `undefined` at once
 * when another holder has it. Used for `RUN --mount=type=cache,sharing=locked|private`.
 * @throws KilnError RUN_CACHE_LOCK when `flock` cannot be run.
 */
export function lockFile(file: string, wait: boolean, signal?: AbortSignal): Promise<Unlock | undefined> {
  return new Promise((resolve, reject) => {
    const child = spawn("flock", [wait ? "-x" : "-xn", file, "-c", "echo locked; exec cat >/dev/null"], {
      stdio: ["pipe", "pipe", "ignore"],
    });
    let settled = false;
    const exited = new Promise<void>((r) => child.once("close", () => r()));
    const unlock: Unlock = async () => {
      child.stdin.end();
      await exited;
    };
    const onAbort = (): void => {
      if (settled) return;
      settled = true;
      child.kill("SIGKILL");
      reject(new KilnError("INTERRUPTED", `interrupted while waiting for the lock on ${file}`));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    child.stdout.once("data", () => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      resolve(unlock);
    });
    child.once("error", (e) => {
      if (settled) return;
      settled = true;
      reject(
        new KilnError("RUN_CACHE_LOCK", `cannot lock ${file}: ${e.message} (sharing=locked needs util-linux flock)`, {
          cause: e,
        }),
      );
    });
    child.once("close", (code) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      if (!wait && code === 1) resolve(undefined);
      else reject(new KilnError("RUN_CACHE_LOCK", `cannot lock ${file}: flock exited with code ${String(code)}`));
    });
  });
}
