import type { Digest } from "../image/digest.js";
import type { ClientContext } from "./events.js";

/** Reports the bytes of one blob transfer as throttled `blob-progress` events. */
export interface BlobProgress {
  /** `bytes` moved so far; emitted at most once per `progressIntervalMs`. */
  update(bytes: number): void;
  /** Ends the transfer with its final event (once; later calls are ignored). */
  end(outcome: "done" | "failed"): void;
}

/** Where and which way a blob moves. */
export interface BlobTransfer {
  direction: "pull" | "push";
  registry: string;
  repository: string;
  digest: Digest;
  size: number;
}

/**
 * Creates the progress reporter of one blob transfer. The first update waits one interval, so
 * small blobs produce a single `done` event; the final event of a successful transfer carries
 * `bytes === size`.
 *
 * This is the only throttle of transfer progress in kiln: a blob moves in network-sized chunks (tens
 * of KiB), so a 1 GiB layer would otherwise emit tens of thousands of events. Events are the library's only
 * output, and their consumers (the CLI's progress display, the build report, library users) all
 * want a bounded stream, so the bound is set here, at the source, once; the CLI's display only
 * redraws on its own timer and does not throttle again (src/cli/progress.ts).
 */
export function blobProgress(ctx: ClientContext, t: BlobTransfer): BlobProgress {
  const now = ctx.now ?? (() => performance.now());
  const interval = ctx.progressIntervalMs ?? 100;
  let last = now();
  let bytes = 0;
  let ended = false;
  const emit = (done: boolean, failed: boolean): void =>
    ctx.emit({
      kind: "blob-progress",
      direction: t.direction,
      registry: t.registry,
      repository: t.repository,
      digest: t.digest,
      bytes,
      total: t.size,
      done,
      ...(failed ? { failed: true } : {}),
    });
  return {
    update(n) {
      if (ended) return;
      bytes = n;
      const at = now();
      if (at - last < interval) return;
      last = at;
      emit(false, false);
    },
    end(outcome) {
      if (ended) return;
      ended = true;
      if (outcome === "done") bytes = t.size;
      emit(true, outcome === "failed");
    },
  };
}
