import { userinfoPattern } from "../common/url-userinfo.js";
import { KilnError } from "../common/errors.js";
import { RegistryError } from "../registry/errors.js";

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
  const located = msg.startsWith(`${location}: `) ? msg : `${location}: ${firstLine(original)}: ${msg}`;
  // A registry's answer keeps its registry, repository and status (the CLI's debug lines show them).
  if (cause instanceof RegistryError) {
    return new RegistryError(code, located, {
      registry: cause.registry,
      ...(cause.repository !== undefined ? { repository: cause.repository } : {}),
      ...(cause.status !== undefined ? { status: cause.status } : {}),
      ...(cause.ociCode !== undefined ? { ociCode: cause.ociCode } : {}),
      cause,
    });
  }
  return new KilnError(code, located, { cause });
}

/** The instruction's first line, without the user info of any URL in it (`ADD https://u:pw@h/f`). */
function firstLine(s: string): string {
  const l = (s.split("\n")[0] ?? "").replace(userinfoPattern(), "://");
  return l.length > 120 ? `${l.slice(0, 117)}...` : l;
}
