/**
 * Base error type of every error kiln raises on purpose. `code` is stable and machine-readable; the
 * CLI maps codes to exit codes and renders `message` as the one clear line a user sees.
 */
export class KilnError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** True when `e` is a KilnError (or subclass) carrying the given code. */
export function hasCode(e: unknown, code: string): e is KilnError {
  return e instanceof KilnError && e.code === code;
}

/** Thrown by exhaustive switches over discriminated unions; unreachable at type level. */
export function assertNever(x: never, what = "value"): never {
  throw new KilnError("INTERNAL", `unexpected ${what}: ${JSON.stringify(x)}`);
}

/** The message of a thrown value: an Error's message, else the value as text. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
