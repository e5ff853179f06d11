import { constants } from "node:os";

/** One helper failure as reported on the status pipe: `error <stage> <errno> <message>`. */
export interface HelperError {
  stage: string;
  errno: number;
  message: string;
}

/** What the helper reported on its status pipe. */
export interface HelperStatus {
  error?: HelperError;
  execOk: boolean;
  exitCode?: number;
  signal?: number;
}

/** Parses the helper's status-pipe text; the first `error` line wins, unknown lines are ignored. */
export function parseHelperStatus(text: string): HelperStatus {
  const status: HelperStatus = { execOk: false };
  for (const line of text.split("\n")) {
    const m = /^error (\S+) (\d+) (.*)$/.exec(line);
    if (m !== null) {
      status.error ??= { stage: m[1] as string, errno: Number(m[2]), message: m[3] as string };
      continue;
    }
    if (line === "exec-ok") status.execOk = true;
    const end = /^(exit|signal) (\d+)$/.exec(line);
    if (end !== null) {
      if (end[1] === "exit") status.exitCode = Number(end[2]);
      else status.signal = Number(end[2]);
    }
  }
  return status;
}

/** The name ("SIGKILL") of signal number `n`, or `SIG<n>` when unknown. */
export function signalName(n: number): string {
  const found = Object.entries(constants.signals).find(([, v]) => v === n);
  return found ? found[0] : `SIG${n}`;
}

/**
 * Turns a helper failure into the one line a user sees: what could not be done, about which path,
 * and what to check. `argv0` and `cwd` are the command and working directory of the RUN.
 */
export function describeHelperError(e: HelperError, argv0: string, cwd: string): string {
  const { ENOENT, EACCES, ENOEXEC, ENOTDIR, EPERM, EINVAL } = constants.errno;
  if (e.stage === "exec") {
    if (e.errno === ENOENT) return `${argv0}: no such file or directory in the image (is it installed, and on PATH?)`;
    if (e.errno === EACCES) return `${argv0}: permission denied (is it executable by the RUN user?)`;
    if (e.errno === ENOEXEC) return `${argv0}: exec format error (wrong architecture, or a script without #!)`;
  }
  if (e.stage === "chdir" && (e.errno === ENOENT || e.errno === ENOTDIR)) {
    return `working directory ${cwd} does not exist in the image`;
  }
  if (e.stage === "credentials" && (e.errno === EINVAL || e.errno === EPERM)) {
    return `cannot switch to the RUN user (${e.message}); in a rootless user namespace only root (0) is mapped`;
  }
  return `RUN setup failed at ${e.stage}: ${e.message}`;
}
