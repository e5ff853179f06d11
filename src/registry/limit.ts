/**
 * Runs `fn` over `items` with at most `limit` calls in flight; resolves when all finish, rejecting
 * with the first error (remaining items are not started after a failure).
 */
export async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, () => worker());
  const results = await Promise.allSettled(workers);
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (rejected !== undefined) throw rejected.reason;
}

/** Runs async tasks with at most `limit` in flight; the others wait in call order. */
export type Limiter = <T>(fn: () => Promise<T>) => Promise<T>;

/** Creates a {@link Limiter} allowing `limit` (at least 1) concurrent tasks. */
export function createLimiter(limit: number): Limiter {
  const max = Math.max(1, limit);
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= max) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}
