import { createLimiter } from "./limit.js";

/**
 * Runs `fn` over `items` with at most `limit` (at least 1) calls in flight, starting them in item order;
 * resolves to the results in item order. After a call rejects no further item is started: it rejects with
 * the first error once the calls in flight have settled.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const run = createLimiter(limit);
  const results = new Array<R>(items.length);
  let failure: { error: unknown } | undefined;
  await Promise.allSettled(
    items.map((item, i) =>
      run(async () => {
        if (failure !== undefined) return; // not started: an earlier call failed
        try {
          results[i] = await fn(item, i);
        } catch (e) {
          failure ??= { error: e };
        }
      }),
    ),
  );
  if (failure !== undefined) throw failure.error;
  return results;
}
