import { test } from "node:test";
import assert from "node:assert/strict";
import type { Digest } from "../image/digest.js";
import { blobProgress } from "./blob-progress.js";
import type { RegistryEvent } from "./events.js";

const digest = `sha256:${"cd".repeat(32)}` as Digest;
const transfer = { direction: "pull", registry: "r:5000", repository: "app", digest, size: 1_000_000 } as const;

/** A reporter over a fake clock; returns it with the events it emitted and a clock setter. */
function setup(progressIntervalMs?: number) {
  const events: RegistryEvent[] = [];
  let now = 0;
  const p = blobProgress(
    {
      retries: 0,
      baseDelayMs: 0,
      emit: (e) => events.push(e),
      now: () => now,
      ...(progressIntervalMs !== undefined ? { progressIntervalMs } : {}),
    },
    transfer,
  );
  return { p, events, at: (ms: number) => (now = ms) };
}

test("updates are emitted at most once per 100 ms however many chunks arrive", () => {
  const { p, events, at } = setup();
  // 100 000 chunk updates over 10 s (one every 0.1 ms).
  for (let i = 1; i <= 100_000; i++) {
    at(i / 10);
    p.update(i * 10);
  }
  p.end("done");
  // One event per full 100 ms (the first waits one interval) plus the final one.
  assert.equal(events.length, 101);
  const bytes = events.map((e) => (e.kind === "blob-progress" ? e.bytes : -1));
  assert.equal(bytes[0], 1000 * 10, "the first event comes after 100 ms");
  assert.equal(bytes.at(-1), transfer.size);
  for (let i = 1; i < bytes.length; i++) assert.ok((bytes[i] ?? 0) >= (bytes[i - 1] ?? 0));
});

test("a blob faster than one interval gives a single done event; end is emitted once", () => {
  const { p, events, at } = setup();
  for (let i = 1; i <= 1000; i++) {
    at(i / 100);
    p.update(i * 1000);
  }
  p.end("done");
  p.end("failed");
  p.update(5);
  assert.deepEqual(events, [
    {
      kind: "blob-progress",
      direction: "pull",
      registry: "r:5000",
      repository: "app",
      digest,
      bytes: 1_000_000,
      total: 1_000_000,
      done: true,
    },
  ]);
});

test("a failed transfer ends with failed at the bytes reached; interval 0 reports every update", () => {
  const { p, events } = setup(0);
  p.update(10);
  p.update(20);
  p.end("failed");
  assert.deepEqual(
    events.map((e) => (e.kind === "blob-progress" ? [e.bytes, e.done, e.failed ?? false] : [])),
    [
      [10, false, false],
      [20, false, false],
      [20, true, true],
    ],
  );
});
