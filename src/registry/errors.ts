import { KilnError } from "../common/errors.js";

/** Details carried by a {@link RegistryError}. */
export interface RegistryErrorDetails {
  status?: number;
  registry: string;
  repository?: string;
  ociCode?: string;
  /** Delay the registry asked for (Retry-After), in milliseconds. */
  retryAfterMs?: number;
  cause?: unknown;
}

/**
 * An error answered by (or while talking to) a registry. The message names the operation, the
 * registry/repository and the HTTP status with the registry's own error code, e.g.
 * `pushing 127.0.0.1:5000/app: 401 Unauthorized (UNAUTHORIZED: authentication required)`.
 * It never contains credentials, tokens or query strings.
 */
export class RegistryError extends KilnError {
  readonly status?: number;
  readonly registry: string;
  readonly repository?: string;
  readonly ociCode?: string;
  /** Delay the registry asked for before a retry (from `Retry-After`), in milliseconds. */
  readonly retryAfterMs?: number;
  constructor(code: string, message: string, details: RegistryErrorDetails) {
    super(code, message, details.cause !== undefined ? { cause: details.cause } : undefined);
    this.registry = details.registry;
    if (details.status !== undefined) this.status = details.status;
    if (details.repository !== undefined) this.repository = details.repository;
    if (details.ociCode !== undefined) this.ociCode = details.ociCode;
    if (details.retryAfterMs !== undefined) this.retryAfterMs = details.retryAfterMs;
  }
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Payload Too Large",
  416: "Range Not Satisfiable",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** Stable error code for an HTTP status answered by a registry. */
export function codeForStatus(status: number): string {
  if (status === 401) return "REGISTRY_UNAUTHORIZED";
  if (status === 403) return "REGISTRY_DENIED";
  if (status === 404) return "REGISTRY_NOT_FOUND";
  if (status === 429) return "REGISTRY_TOO_MANY_REQUESTS";
  if (status >= 500) return "REGISTRY_UNAVAILABLE";
  return "REGISTRY_ERROR";
}

/** Parses an OCI/distribution error body (`{"errors":[{"code","message"}]}`) into `CODE: message` parts. */
export function parseOciErrors(body: string): { code?: string; text?: string } {
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === "object" && parsed !== null && "errors" in parsed && Array.isArray(parsed.errors)) {
      const items = (parsed.errors as unknown[]).filter(
        (e): e is { code?: unknown; message?: unknown } => typeof e === "object" && e !== null,
      );
      const first = items[0];
      const code = typeof first?.code === "string" ? first.code : undefined;
      const text = items
        .map((e) => [e.code, e.message].filter((x): x is string => typeof x === "string" && x !== "").join(": "))
        .filter((t) => t !== "")
        .join("; ");
      return { ...(code !== undefined ? { code } : {}), ...(text !== "" ? { text: redactText(text) } : {}) };
    }
  } catch {
    // not JSON: fall through
  }
  return {};
}

/** Builds the RegistryError for an unexpected HTTP answer. */
export function statusError(
  operation: string,
  registry: string,
  repository: string | undefined,
  status: number,
  body: string,
  retryAfterMs?: number,
): RegistryError {
  const oci = parseOciErrors(body);
  const where = repository !== undefined ? `${registry}/${repository}` : registry;
  const statusText = STATUS_TEXT[status] ?? "";
  const detail = oci.text !== undefined ? ` (${oci.text})` : "";
  let hint = "";
  if (status === 401) hint = "; check the credentials for this registry (docker config.json, credential helper)";
  else if (status === 403) hint = "; the credentials lack permission for this repository";
  return new RegistryError(
    codeForStatus(status),
    `${operation} ${where}: ${status}${statusText ? ` ${statusText}` : ""}${detail}${hint}`,
    {
      status,
      registry,
      ...(repository !== undefined ? { repository } : {}),
      ...(oci.code ? { ociCode: oci.code } : {}),
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    },
  );
}

/** A URL safe to show: no user info, no query string, no fragment. */
export function redactUrl(u: string | URL): string {
  try {
    const url = new URL(u);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return "<url>";
  }
}

/** Removes things that look like bearer tokens, basic credentials or URL queries from free text. */
export function redactText(s: string): string {
  return (
    s
      .replace(/(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, "$1 <redacted>")
      .replace(/eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, "<redacted-jwt>")
      // User info runs to the last `@` before the path (a password may hold an unencoded `@`).
      .replace(/(https?:\/\/)[^/\s?#]*@/g, "$1")
      .replace(/(https?:\/\/[^\s?#]+)\?[^\s#]*/g, "$1")
  );
}
