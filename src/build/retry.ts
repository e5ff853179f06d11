/**
 * Calls `fn` up to `retries + 1` times until it resolves; `onRetry` hears about each failure that is
 * retried (attempt numbers start at 1). The last failure is rethrown. No delay between attempts: the
 * operations retried here (pulls, extractions) already back off inside the registry client.
 */
export async function withRetries<T>(
  fn: () => Promise<T>,
  retries: number,
  onRetry: (attempt: number, error: unknown) => void,
  signal?: AbortSignal,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      // A cancelled build is not retried (its failures are the cancellation's).
      if (attempt >= retries || signal?.aborted === true) throw e;
      onRetry(attempt + 1, e);
    }
  }
}
