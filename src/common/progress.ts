import { Transform, type Readable } from "node:stream";

/** Reports the running count of one task (a transfer, an extraction) as throttled events. */
export interface Progress {
  /** `n` units done so far; passed on at most once per interval. */
  update(n: number): void;
  /** Ends the task with its final report (once; later calls are ignored). */
  end(outcome: "done" | "failed"): void;
}

/** What {@link throttledProgress} passes on: the count, and whether it is the last report and a failure. */
export type ProgressSink = (n: number, done: boolean, failed: boolean) => void;

/**
 * A progress reporter that passes updates to `sink` at most once per `intervalMs` (the first one only after
 * a whole interval, so a short task reports once, when it ends). `final` gives the count of a task that
 * ended well (e.g. the blob's size), else the last update stands.
 */
export function throttledProgress(
  sink: ProgressSink,
  opts: { now?: () => number; intervalMs?: number; final?: () => number } = {},
): Progress {
  const now = opts.now ?? (() => performance.now());
  const interval = opts.intervalMs ?? 100;
  let last = now();
  let n = 0;
  let ended = false;
  return {
    update(count) {
      if (ended) return;
      n = count;
      const at = now();
      if (at - last < interval) return;
      last = at;
      sink(n, false, false);
    },
    end(outcome) {
      if (ended) return;
      ended = true;
      if (outcome === "done" && opts.final) n = opts.final();
      sink(n, true, outcome === "failed");
    },
  };
}

/**
 * Passes `src` through, reporting the running byte count; destroying either side destroys both. A failure
 * of `src` itself reaches the consumer as `sourceError(e)`.
 */
export function countedStream(
  src: Readable,
  onBytes: (n: number) => void,
  sourceError: (e: unknown) => Error = (e) => (e instanceof Error ? e : new Error(String(e))),
): Readable {
  let n = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      onBytes(n);
      cb(null, chunk);
    },
  });
  // Only the source's own failures arrive here: the consumer stopping (t destroyed) ends src without one.
  src.once("error", (e) => t.destroy(sourceError(e)));
  t.once("close", () => src.destroy());
  return src.pipe(t);
}
