import type { Readable } from "node:stream";
import type { HeaderCapture } from "../cache/index.js";
import { applyLayer, type ApplyOptions, type ApplyResult } from "../fs/index.js";

/**
 * applyLayer, with every header read also going to `capture` (the cache's header copy of the layer), which
 * is ended with whether the whole layer was applied.
 */
export async function applyCaptured(
  root: string,
  tar: Readable,
  opts: ApplyOptions,
  capture: HeaderCapture | undefined,
): Promise<ApplyResult> {
  if (capture === undefined) return applyLayer(root, tar, opts);
  let ok = false;
  try {
    const r = await applyLayer(root, tar, { ...opts, onEntry: (h) => capture.add(h) });
    ok = true;
    return r;
  } finally {
    capture.end(ok);
  }
}
