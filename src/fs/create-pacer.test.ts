import assert from "node:assert/strict";
import { test } from "node:test";
import { CreatePacer, POOL_BATCH, SLOW_CREATE_MS } from "./create-pacer.js";

/** Drives the pacer with a creation time per call; answers how many went to the pool. */
function run(p: CreatePacer, times: (i: number) => number, n: number): number {
  let pooled = 0;
  for (let i = 0; i < n; i++) {
    if (p.inline()) p.record(times(i));
    else pooled++;
  }
  return pooled;
}

test("fast creations stay inline; one slow outlier among fast ones does not switch", () => {
  const p = new CreatePacer();
  assert.equal(
    run(p, () => SLOW_CREATE_MS / 4, 10_000),
    0,
  );
  // One call at 3x the threshold lifts an average of 1/4 threshold to ~0.59 of it: still inline.
  assert.equal(
    run(p, (i) => (i === 0 ? SLOW_CREATE_MS * 3 : SLOW_CREATE_MS / 4), 100),
    0,
  );
});

test("a slow disk sends creations to the pool in batches, measuring inline between them", () => {
  const p = new CreatePacer();
  const n = 10 * (POOL_BATCH + 1);
  const pooled = run(p, () => SLOW_CREATE_MS * 10, n);
  assert.equal(pooled, n - 10);
});

test("when the disk gets fast again the next inline measurement brings creations back inline", () => {
  const p = new CreatePacer();
  run(p, () => SLOW_CREATE_MS * 10, 20); // 1 inline (slow) + 19 of the batch in the pool
  // The rest of the batch goes to the pool; then the first inline sample restarts the average.
  const pooled = run(p, () => SLOW_CREATE_MS / 4, POOL_BATCH + 1000);
  assert.equal(pooled, POOL_BATCH - 19);
});
