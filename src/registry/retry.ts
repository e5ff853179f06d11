import { setTimeout as delay } from "node:timers/promises";
import { KilnError } from "../common/errors.js";
import { RegistryError, redactText } from "./errors.js";
import type { ClientContext } from "./events.js";
import type { RegistryHost } from "./host.js";

/** Error codes of network failures worth retrying (connection resets, timeouts, premature EOF). */
const RETRYABLE_NET = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "ECONNABORTED",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_RES_CONTENT_LENGTH_MISMATCH",
  "PREMATURE_EOF",
]);

/** Retry-After hint attached to an error (milliseconds), set for 429/503 answers. */
export function retryAfterOf(e: unknown): number | undefined {
  return e instanceof RegistryError ? e.retryAfterMs : undefined;
}

/** Parses a `Retry-After` header (seconds or HTTP date) into milliseconds, capped at 60 s. */
export function parseRetryAfter(v: string | undefined, now = Date.now()): number | undefined {
  if (v === undefined || v.trim() === "") return undefined;
  const secs = Number(v);
  const ms = Number.isFinite(secs) ? secs * 1000 : Date.parse(v) - now;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(ms, 0), 60_000);
}

/**
 * Whether `e`, or an error it wraps a few causes deep, is the failure of an aborted operation (undici,
 * streams and timers name it AbortError).
 */
export function isAbortError(e: unknown): boolean {
  let cur: unknown = e;
  for (let depth = 0; depth < 5 && typeof cur === "object" && cur !== null; depth++) {
    if ((cur as { name?: unknown }).name === "AbortError") return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return false;
}

/** True for errors a retry may cure: 5xx, 429, connection resets and timeouts. Aborts never are. */
export function isRetryable(e: unknown): boolean {
  // A manifest PUT answered MANIFEST_BLOB_UNKNOWN right after its blobs were pushed: registries on
  // eventually consistent storage, and distribution itself while another client commits the same blob,
  // answer this transiently — the blobs were verified and are there a moment later.
  if (e instanceof RegistryError && e.status === 400 && /MANIFEST_BLOB_UNKNOWN/.test(e.message)) return true;
  if (e instanceof RegistryError && e.status !== undefined) return e.status >= 500 || e.status === 429;
  if (e instanceof KilnError && !(e instanceof RegistryError)) return RETRYABLE_NET.has(e.code);
  let cur: unknown = e instanceof RegistryError ? e.cause : e;
  if (isAbortError(cur)) return false;
  for (let depth = 0; depth < 4 && cur instanceof Error; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === "string" && RETRYABLE_NET.has(code)) return true;
    if (/socket hang up|other side closed|terminated/i.test(cur.message)) return true;
    cur = cur.cause;
  }
  return false;
}

/** Options of {@link withRetry}. */
export interface RetryOptions {
  retries: number;
  baseDelayMs: number;
  signal?: AbortSignal;
  onRetry?: (attempt: number, delayMs: number, error: unknown) => void;
}

/**
 * Runs `fn` and retries it on retryable errors up to `retries` more times with exponential backoff
 * (base, 2×base, 4×base… capped at 10 s), honouring a Retry-After hint when larger.
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      if (attempt >= opts.retries || !isRetryable(e) || opts.signal?.aborted) throw e;
      const backoff = Math.min(opts.baseDelayMs * 2 ** attempt, 10_000);
      const wait = Math.max(backoff, retryAfterOf(e) ?? 0);
      opts.onRetry?.(attempt + 1, wait, e);
      await delay(wait, undefined, opts.signal ? { signal: opts.signal } : undefined);
    }
  }
}

/** {@link RetryOptions} for one registry operation, reporting each retry as a redacted `retry` event. */
export function retryOpts(
  ctx: ClientContext,
  host: RegistryHost,
  operation: string,
  signal?: AbortSignal,
): RetryOptions {
  return {
    retries: ctx.retries,
    baseDelayMs: ctx.baseDelayMs,
    ...(signal ? { signal } : {}),
    onRetry: (attempt: number, delayMs: number, e: unknown) =>
      ctx.emit({
        kind: "retry",
        registry: host.registry,
        operation,
        attempt,
        delayMs,
        reason: redactText(e instanceof Error ? e.message : String(e)),
      }),
  };
}
