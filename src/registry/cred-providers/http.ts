import { request } from "undici";
import { KilnError } from "../../common/errors.js";
import { readLimited } from "../host.js";

/** The largest credential-service answer read. */
const MAX_ANSWER_BYTES = 1024 * 1024;

/** A successful JSON answer of a token endpoint. */
export type JsonObject = Record<string, unknown>;

/** `text` parsed as a JSON object; undefined when it is not JSON, or JSON of another kind (an array too). */
export function parseJsonObject(text: string): JsonObject | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) return parsed as JsonObject;
  } catch {
    // not JSON
  }
  return undefined;
}

/** Where a token request goes and what it is for (used in error messages; never the body). */
export interface TokenRequest {
  url: URL;
  method?: "GET" | "POST" | "PUT";
  headers?: Record<string, string>;
  /** `application/x-www-form-urlencoded` body. */
  form?: Record<string, string>;
  /** `application/json` body (when `form` is absent). */
  json?: unknown;
  /** e.g. "ECR", "Google", "Azure AD" — names the provider in errors. */
  provider: string;
  timeoutMs: number;
}

/** The URL without query or credentials, safe for messages. */
export function safeUrl(u: URL): string {
  return `${u.protocol}//${u.host}${u.pathname}`;
}

/**
 * Sends one token request and parses its JSON answer. Errors name the provider and the endpoint
 * (never the query, the body or the answer, which may hold secrets) and say what to check.
 */
export async function requestJson(r: TokenRequest): Promise<JsonObject> {
  const parsed = parseJsonObject(await requestText(r));
  if (parsed) return parsed;
  throw new KilnError(
    "CREDENTIAL_PROVIDER_FAILED",
    `${r.provider} credentials: ${safeUrl(r.url)} did not answer a JSON object`,
  );
}

/**
 * Sends one token request and answers the body of a 2xx answer as text; other answers and network
 * failures throw like {@link requestJson}.
 */
export async function requestText(r: TokenRequest): Promise<string> {
  const headers: Record<string, string> = { accept: "application/json", ...r.headers };
  let body: string | undefined;
  if (r.form !== undefined) {
    headers["content-type"] = "application/x-www-form-urlencoded";
    body = new URLSearchParams(r.form).toString();
  } else if (r.json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(r.json);
  }
  let status: number;
  let text: string;
  try {
    const res = await request(r.url, {
      method: r.method ?? (body !== undefined ? "POST" : "GET"),
      headers,
      ...(body !== undefined ? { body } : {}),
      signal: AbortSignal.timeout(r.timeoutMs),
    });
    status = res.statusCode;
    // Metadata and STS answers are a few KiB: more is refused rather than buffered.
    text = (
      await readLimited(res.body, MAX_ANSWER_BYTES, () => new Error(`answered more than ${MAX_ANSWER_BYTES} bytes`))
    ).toString("utf8");
  } catch (e) {
    throw new KilnError(
      "CREDENTIAL_PROVIDER_FAILED",
      `${r.provider} credentials: cannot reach ${safeUrl(r.url)}: ${(e as Error).message}`,
      { cause: e },
    );
  }
  if (status < 200 || status >= 300) {
    throw new KilnError(
      "CREDENTIAL_PROVIDER_FAILED",
      `${r.provider} credentials: ${safeUrl(r.url)} answered HTTP ${status}${oauthError(text)}; check the identity's configuration and permissions`,
    );
  }
  return text;
}

/** The OAuth2 `error` code of an error answer (a fixed vocabulary, safe to show), if any. */
export function oauthError(text: string): string {
  try {
    const j = JSON.parse(text) as { error?: unknown };
    if (typeof j.error === "string" && /^[a-z_]{1,64}$/.test(j.error)) return ` (${j.error})`;
    // Google API errors: {"error": {"code": 403, "status": "PERMISSION_DENIED", ...}}
    const status =
      typeof j.error === "object" && j.error !== null ? (j.error as { status?: unknown }).status : undefined;
    if (typeof status === "string" && /^[A-Z_]{1,64}$/.test(status)) return ` (${status})`;
  } catch {
    // not JSON
  }
  return "";
}

/** A non-empty string field of a JSON answer, or a clear error. */
export function stringField(j: JsonObject, field: string, provider: string, where: string): string {
  const v = j[field];
  if (typeof v !== "string" || v === "") {
    throw new KilnError(
      "CREDENTIAL_PROVIDER_FAILED",
      `${provider} credentials: the answer of ${where} has no "${field}"`,
    );
  }
  return v;
}

/** True for registry hosts on the loopback interface (tests), where token exchanges use plain HTTP. */
export function isLoopbackHost(registry: string): boolean {
  const host = registry.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}
