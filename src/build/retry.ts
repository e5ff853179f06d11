import { setTimeout as sleep } from "node:timers/promises";

/**
 * How a failed base pull (`--image-download-retry`) or extraction (`--image-fs-extract-retry`) is retried:
 * as in kaniko, with a wait that starts at `firstDelayMs` (1 s) and doubles. The registry client's own
 * retries (with their backoff) have already run by then: what is left is a registry that is down for
 * seconds, or a tag not pushed yet, which an immediate retry would not outlast.
 */
export interface RetryPolicy {
  retries: number;
  firstDelayMs: number;
}

/** kaniko's first wait before a retry. */
export const RETRY_FIRST_DELAY_MS = 1000;

/** The policy for `retries` (undefined: none) and an optional first wait (tests shorten it). */
export function retryPolicy(retries: number | undefined, firstDelayMs = RETRY_FIRST_DELAY_MS): RetryPolicy {
  return { retries: Math.max(0, retries ?? 0), firstDelayMs: Math.max(0, firstDelayMs) };
}

/** The wait before retry number `attempt` (1-based): first, twice that, four times… (capped at 2^10). */
export function retryDelayMs(policy: RetryPolicy, attempt: number): number {
  return policy.firstDelayMs * 2 ** Math.min(Math.max(attempt - 1, 0), 10);
}

/** Waits before retry number `attempt` (1-based); rejects at once when `signal` aborts. */
export async function retryWait(policy: RetryPolicy, attempt: number, signal?: AbortSignal): Promise<void> {
  const ms = retryDelayMs(policy, attempt);
  if (ms > 0) await sleep(ms, undefined, signal ? { signal } : undefined);
}

/**
 * Calls `fn` up to `policy.retries + 1` times until it resolves, waiting between attempts; `onRetry`
 * hears about each failure that is retried (attempt numbers start at 1). The last failure is rethrown.
 */
export async function withRetries<T>(
  fn: () => Promise<T>,
  policy: RetryPolicy,
  onRetry: (attempt: number, error: unknown) => void,
  signal?: AbortSignal,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      // A cancelled build is not retried (its failures are the cancellation's).
      if (attempt >= policy.retries || signal?.aborted === true) throw e;
      onRetry(attempt + 1, e);
      await retryWait(policy, attempt + 1, signal).catch(() => {
        throw e; // cancelled while waiting: the failure stands
      });
    }
  }
}
