import { KilnError } from "../common/errors.js";

/** A RUN step exited non-zero; the CLI exits with `exitCode` like kaniko does. */
export class RunFailedError extends KilnError {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super("RUN_FAILED", message);
    this.exitCode = exitCode;
  }
}

/** Wraps a step failure with the Dockerfile location and the instruction text. */
export function stepError(location: string, original: string, cause: unknown): KilnError {
  if (cause instanceof RunFailedError) return cause;
  const msg = cause instanceof Error ? cause.message : String(cause);
  const code = cause instanceof KilnError ? cause.code : "STEP_FAILED";
  // A Dockerfile error of this step (e.g. `${X:?msg}`) already names the location and the line.
  if (msg.startsWith(`${location}: `)) return new KilnError(code, msg, { cause });
  const e = new KilnError(code, `${location}: ${firstLine(original)}: ${msg}`, { cause });
  return e;
}

function firstLine(s: string): string {
  const l = s.split("\n")[0] ?? "";
  return l.length > 120 ? `${l.slice(0, 117)}...` : l;
}
