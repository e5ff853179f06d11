import * as assert from "node:assert/strict";
import { test } from "node:test";
import { createLimiter } from "./limit.js";

/** Lets every queued promise callback run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A task that records itself as running until its gate opens. */
function gated(
  running: Set<number>,
  most: { n: number },
  id: number,
): { task: () => Promise<number>; open: () => void } {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const task = async (): Promise<number> => {
    running.add(id);
    most.n = Math.max(most.n, running.size);
    await gate;
    running.delete(id);
    return id;
  };
  return { task, open };
}

test("a limiter runs at most `limit` tasks, the others in call order, and passes results and errors on", async () => {
  const limit = createLimiter(2);
  const running = new Set<number>();
  const most = { n: 0 };
  const tasks = [0, 1, 2, 3].map((id) => gated(running, most, id));
  const results = tasks.map((t) => limit(t.task));
  await settle();
  assert.deepEqual([...running], [0, 1]);
  tasks[1]?.open();
  await settle();
  assert.deepEqual([...running], [0, 2], "the first waiter took the freed slot");
  tasks[0]?.open();
  tasks[2]?.open();
  tasks[3]?.open();
  assert.deepEqual(await Promise.all(results), [0, 1, 2, 3]);
  assert.equal(most.n, 2);
  await assert.rejects(
    limit(() => Promise.reject(new Error("boom"))),
    /boom/,
  );
  assert.equal(await limit(() => Promise.resolve("free again")), "free again", "a failed task frees its slot");
  assert.equal(await createLimiter(0)(() => Promise.resolve(1)), 1, "a limit below 1 means 1");
});
