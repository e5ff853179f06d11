import type { HistoryEntry } from "../image/types.js";

/**
 * History and image times as BuildKit writes them (observed with docker 20.10's BuildKit on this
 * project's test machine: test/build/history-times.test.ts compares kiln with it):
 *
 * - an entry that records a layer carries the time that layer was made: a step that ran, when it
 *   ran; a cache hit, when the cached step originally ran (so a fully cached rebuild reproduces the
 *   previous image byte for byte, digest included);
 * - an entry without a layer (ENV, LABEL, CMD, …) takes a neighbouring layer's time: the entries
 *   before the first new layer take that layer's time, later ones the time of the last layer before
 *   them; a stage that adds no layer at all gives them the base image's last time;
 * - the image's `created` is the last history entry's time (a Dockerfile of metadata instructions only
 *   keeps its base image's creation time).
 *
 * kaniko instead stamps every build with the current time (a new digest on every rebuild); with
 * `--reproducible` or SOURCE_DATE_EPOCH both give every time as that epoch, which this module leaves alone.
 */

/**
 * Fills the `created` of the entries `isTimed` rejects from the timed entries around them (BuildKit's
 * rule, see the module comment). Entries without a valid time count as untimed only when `isTimed`
 * says so; the first pass finds the time the leading untimed entries take, the second fills.
 */
export function fillHistoryTimes(history: HistoryEntry[], isTimed: (entry: HistoryEntry) => boolean): void {
  let created: string | undefined;
  let sawUntimed = false;
  for (const h of history) {
    if (isTimed(h)) {
      if (h.created !== undefined) created = h.created;
      if (sawUntimed && created !== undefined) break;
    } else sawUntimed = true;
  }
  sawUntimed = false;
  for (const h of history) {
    if (isTimed(h)) {
      if (sawUntimed && h.created !== undefined) created = h.created;
    } else {
      sawUntimed = true;
      if (created !== undefined) h.created = created;
    }
  }
}

/** The image `created` BuildKit writes: the last history entry's time, else `fallback`. */
export function imageCreatedFromHistory(history: readonly HistoryEntry[], fallback: string): string {
  const last = history[history.length - 1]?.created;
  return last !== undefined && !Number.isNaN(Date.parse(last)) ? last : fallback;
}
