import { KilnError } from "../../common/errors.js";

/** A `CREDENTIAL_PROVIDER_FAILED` error in the words of the Google provider. */
export function googleFail(message: string, cause?: unknown): KilnError {
  return new KilnError("CREDENTIAL_PROVIDER_FAILED", `Google credentials: ${message}`, cause ? { cause } : undefined);
}

/** The non-empty string field `name` of the credentials file `file` (`prefix`: where it sits, for the message). */
export function requiredString(j: Record<string, unknown>, name: string, file: string, prefix = ""): string {
  const v = j[name];
  if (typeof v !== "string" || v === "") throw googleFail(`${file} has no "${prefix}${name}"`);
  return v;
}
