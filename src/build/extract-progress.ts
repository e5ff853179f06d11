import type { Readable } from "node:stream";
import { countedStream, throttledProgress, type Progress } from "../common/progress.js";
import { shortDigest } from "../image/digest.js";
import type { Layer } from "../image/types.js";
import type { Reporter } from "./events.js";

/**
 * A layer's extraction as `transfer` events (phase "extract", throttled like blob transfers): the bytes of
 * its uncompressed tar read so far, and a last event when it ends. The CLI draws these like pulls and pushes
 * (a line per phase every 10 s off a TTY, a debug line with the rate when each ends).
 */
function extractProgress(report: Reporter, layer: Layer, stage: number, into: string): Progress {
  // Two extractions of one layer can run at once (a stage's FROM and a COPY --from of the same image).
  const id = `extract ${layer.digest} into ${into}`;
  const label = `layer ${shortDigest(layer.digest)} of stage ${stage}`;
  return throttledProgress((bytes, done, failed) =>
    report({ kind: "transfer", id, phase: "extract", label, bytes, done, ...(failed ? { failed: true } : {}) }),
  );
}

/**
 * Extracts one layer through `apply` with its progress reported: `apply` reads the stream given, and the
 * task ends as done or failed with it.
 */
export async function withExtractProgress<T>(
  report: Reporter,
  layer: Layer,
  stage: number,
  into: string,
  open: () => Promise<Readable>,
  apply: (tar: Readable) => Promise<T>,
): Promise<T> {
  const progress = lazyExtractProgress(report, layer, stage, into, open);
  try {
    const r = await apply(await progress.open());
    progress.end("done");
    return r;
  } catch (e) {
    progress.end("failed");
    throw e;
  }
}

/**
 * For an extraction that may not happen (the layer store extracts only a layer it does not hold): `open`
 * starts the task when called, `end` ends it if it was started.
 */
export function lazyExtractProgress(
  report: Reporter,
  layer: Layer,
  stage: number,
  into: string,
  open: () => Promise<Readable>,
): { open: () => Promise<Readable>; end: (outcome: "done" | "failed") => void } {
  let progress: Progress | undefined;
  return {
    open: async () => {
      progress = extractProgress(report, layer, stage, into);
      return countedStream(await open(), progress.update);
    },
    end: (outcome) => progress?.end(outcome),
  };
}
