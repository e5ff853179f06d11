import { KilnError } from "../../common/errors.js";

/** Error codes a command-line problem can carry; both map to exit status 2. */
export type UsageErrorCode = "USAGE" | "NOT_IMPLEMENTED";

/**
 * A command-line mistake (unknown flag, bad value, missing required flag) or a flag kiln does not
 * implement yet; the CLI prints the message and exits with status 2.
 */
export class UsageError extends KilnError {
  /** Exit status the CLI should use (always 2, like cobra/pflag usage errors). */
  readonly exitCode = 2;
  constructor(message: string, code: UsageErrorCode = "USAGE", options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
