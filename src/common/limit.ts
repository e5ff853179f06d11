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
