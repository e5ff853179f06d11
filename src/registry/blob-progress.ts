import type { Digest } from "../image/digest.js";
import { throttledProgress, type Progress } from "../common/progress.js";
import type { ClientContext } from "./events.js";

/** Reports the bytes of one blob transfer as throttled `blob-progress` events (see {@link blobProgress}). */
export type BlobProgress = Progress;

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
 * Progress is throttled at its source, once (src/common/progress.ts, which layer extraction uses too): a
 * blob moves in network-sized chunks (tens of KiB), so a 1 GiB layer would otherwise emit tens of
 * thousands of events. Events are the library's only output, and their consumers (the CLI's progress
 * display, the build report, library users) all want a bounded stream; the CLI's display only redraws on
 * its own timer and does not throttle again (src/cli/progress.ts).
 */
export function blobProgress(ctx: ClientContext, t: BlobTransfer): BlobProgress {
  return throttledProgress(
    (bytes, done, failed) =>
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
      }),
    {
      ...(ctx.now ? { now: ctx.now } : {}),
      intervalMs: ctx.progressIntervalMs ?? 100,
      final: () => t.size,
    },
  );
}
