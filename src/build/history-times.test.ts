import * as assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { HistoryEntry } from "../image/types.js";
import { fillHistoryTimes, imageCreatedFromHistory } from "./history-times.js";

const BASE = "2024-01-01T00:00:00.000Z";
const T1 = "2026-11-27T03:04:58.000Z";
const T2 = "2026-11-27T03:05:02.000Z";
const T3 = "2026-11-27T03:05:03.000Z";
const NOW = "2026-11-27T09:00:00.000Z";

/** `[created_by, created or undefined for a layerless entry of this build]` → entries + the layerless set. */
function history(rows: [string, string | undefined][]): { h: HistoryEntry[]; layerless: Set<HistoryEntry> } {
  const layerless = new Set<HistoryEntry>();
  const h = rows.map(([by, created]) => {
    const e: HistoryEntry = { created_by: by, created: created ?? NOW };
    if (created === undefined) layerless.add(e);
    return e;
  });
  return { h, layerless };
}

const fill = (rows: [string, string | undefined][]): string[] => {
  const { h, layerless } = history(rows);
  fillHistoryTimes(h, (e) => !layerless.has(e) && e.created !== undefined);
  return h.map((e) => `${e.created_by} ${e.created}`);
};

describe("history times as BuildKit writes them", () => {
  // The rebuild of docker 20.10 BuildKit observed here: FROM base, ENV, RUN a (cache hit, T1), LABEL,
  // COPY (ran, T2), RUN b (ran, T3), CMD.
  it("layerless entries take the first new layer's time, then the last layer's before them", () => {
    assert.deepEqual(
      fill([
        ["base", BASE],
        ["ENV X=1", undefined],
        ["RUN a", T1],
        ["LABEL l=1", undefined],
        ["COPY f /f", T2],
        ["RUN b", T3],
        ['CMD ["sh"]', undefined],
      ]),
      [
        "base " + BASE,
        "ENV X=1 " + T1,
        "RUN a " + T1,
        "LABEL l=1 " + T1,
        "COPY f /f " + T2,
        "RUN b " + T3,
        'CMD ["sh"] ' + T3,
      ],
    );
  });

  it("a stage that adds no layer keeps the base image's last time", () => {
    assert.deepEqual(
      fill([
        ["base 1", "2023-06-01T00:00:00.000Z"],
        ["base 2", BASE],
        ["LABEL a=b", undefined],
        ["ENV X=1", undefined],
      ]),
      ["base 1 2023-06-01T00:00:00.000Z", "base 2 " + BASE, "LABEL a=b " + BASE, "ENV X=1 " + BASE],
    );
  });

  it("a base entry without a time is filled like a layerless one; no timed entry at all leaves times alone", () => {
    const { h } = history([["base", T1]]);
    const noTime: HistoryEntry = { created_by: "old base" };
    const all = [noTime, ...h];
    fillHistoryTimes(all, (e) => e.created !== undefined && e !== noTime);
    assert.equal(noTime.created, T1);
    const lone: HistoryEntry[] = [{ created_by: "ENV", created: NOW }];
    fillHistoryTimes(lone, () => false);
    assert.equal(lone[0]?.created, NOW);
  });

  it("the image's created is the last entry's time, else the fallback", () => {
    assert.equal(imageCreatedFromHistory([{ created: T1 }, { created: T3 }], NOW), T3);
    assert.equal(imageCreatedFromHistory([], NOW), NOW);
    assert.equal(imageCreatedFromHistory([{ created: "not a time" }], NOW), NOW);
  });
});
