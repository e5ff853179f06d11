import * as assert from "node:assert/strict";
import { test } from "node:test";
import { mapLimit } from "./map-limit.js";

/** A promise with its resolve and reject functions. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every queued promise callback run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test("mapLimit keeps at most `limit` calls in flight, starts them in order and returns results in item order", async () => {
  const gates = Array.from({ length: 5 }, () => deferred<void>());
  const started: number[] = [];
  const run = mapLimit(["a", "b", "c", "d", "e"], 2, async (item, i) => {
    started.push(i);
    await gates[i]?.promise;
    return `${item}${i}`;
  });
  await settle();
  assert.deepEqual(started, [0, 1]);
  gates[1]?.resolve(); // the second finishes first: the third starts, still two in flight
  await settle();
  assert.deepEqual(started, [0, 1, 2]);
  gates[2]?.resolve();
  gates[0]?.resolve();
  await settle();
  assert.deepEqual(started, [0, 1, 2, 3, 4]);
  gates[4]?.resolve();
  gates[3]?.resolve();
  assert.deepEqual(await run, ["a0", "b1", "c2", "d3", "e4"]);
});

test("mapLimit with no items, or a limit below 1 or above the item count", async () => {
  assert.deepEqual(await mapLimit([], 4, () => Promise.resolve(1)), []);
  let inFlight = 0;
  let most = 0;
  const track = async (n: number): Promise<number> => {
    most = Math.max(most, ++inFlight);
    await settle();
    inFlight--;
    return n * 2;
  };
  assert.deepEqual(await mapLimit([1, 2, 3], 0, track), [2, 4, 6]);
  assert.equal(most, 1, "a limit of 0 runs one at a time");
  most = 0;
  assert.deepEqual(await mapLimit([1, 2, 3], 10, track), [2, 4, 6]);
  assert.equal(most, 3);
});

test("mapLimit rejects with the first error after the calls in flight settle, starting no further item", async () => {
  const slow = deferred<void>();
  const started: number[] = [];
  let slowDone = false;
  const run = mapLimit([0, 1, 2, 3], 2, async (i) => {
    started.push(i);
    if (i === 0) {
      await slow.promise;
      slowDone = true;
      return;
    }
    throw new Error(`item ${i} failed`);
  });
  let rejected = false;
  run.catch(() => (rejected = true));
  await settle();
  assert.deepEqual(started, [0, 1], "nothing starts after item 1 failed");
  assert.equal(rejected, false, "still waiting for item 0");
  slow.resolve();
  await assert.rejects(run, /item 1 failed/);
  assert.ok(slowDone);
  assert.deepEqual(started, [0, 1]);
});
