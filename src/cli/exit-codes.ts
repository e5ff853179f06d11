import { RunFailedError } from "../build/index.js";
import { KilnError } from "../common/errors.js";
import { RegistryError } from "../registry/index.js";

/**
 * kiln's exit codes (stable, documented in the README):
 * 0 success; 1 build failed; 2 usage error or a flag/feature not implemented yet;
 * N (1–255) a RUN step exited with N — propagated like kaniko does; 130/143 interrupted by SIGINT/SIGTERM.
 */
export const ExitCode = { ok: 0, failed: 1, usage: 2, interrupted: 130, terminated: 143 } as const;

/** Exit code for an error that ended a command. */
export function exitCodeFor(e: unknown): number {
  if (e instanceof RunFailedError) return e.exitCode > 0 && e.exitCode < 256 ? e.exitCode : ExitCode.failed;
  if (e instanceof KilnError && (e.code === "USAGE" || e.code === "NOT_IMPLEMENTED")) return ExitCode.usage;
  return ExitCode.failed;
}

/** The one line a user sees for an error (details and causes only at --verbosity=debug). */
export function errorLine(e: unknown): string {
  if (e instanceof KilnError) return e.message;
  if (e instanceof Error) return `internal error: ${e.message}`;
  return `internal error: ${String(e)}`;
}

/** The error's code (and for registry errors where and what the registry answered), then its cause chain, for --verbosity=debug. */
export function errorDetails(e: unknown): string[] {
  const out: string[] = [];
  if (e instanceof RegistryError) {
    const fields = [
      `registry=${e.registry}`,
      ...(e.repository !== undefined ? [`repository=${e.repository}`] : []),
      ...(e.status !== undefined ? [`status=${e.status}`] : []),
      ...(e.ociCode !== undefined ? [`oci-code=${e.ociCode}`] : []),
    ];
    out.push(`error code ${e.code}: ${fields.join(" ")}`);
  } else if (e instanceof KilnError) out.push(`error code ${e.code}`);
  let cur: unknown = e instanceof Error ? e.cause : undefined;
  for (let depth = 0; cur !== undefined && depth < 10; depth++) {
    out.push(cur instanceof Error ? `caused by: ${cur.message}` : `caused by: ${String(cur)}`);
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  if (e instanceof Error && e.stack && !(e instanceof KilnError)) out.push(e.stack);
  return out;
}
