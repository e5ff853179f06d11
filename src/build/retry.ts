/**
 * Calls `fn` up to `retries + 1` times until it resolves; `onRetry` hears about each failure that is
 * retried (attempt numbers start at 1). The last failure is rethrown. No delay between attempts: the
 * operations retried here (pulls, extractions) already back off inside the registry client.
 */
export async function withRetries<T>(
  fn: () => Promise<T>,
  retries: number,
  onRetry: (attempt: number, error: unknown) => void,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (attempt >= retries) throw e;
      onRetry(attempt + 1, e);
    }
  }
}
