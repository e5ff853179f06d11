import { errorMessage } from "../common/errors.js";
import type { ArtifactCache } from "../cache/index.js";
import type { IgnoreList } from "../fs/index.js";
import type { Layer } from "../image/types.js";
import type { Reporter } from "./events.js";
import { decodeSkeletonRecord } from "./skeleton-record.js";
import { buildSkeletonRoot, recordOfSkeleton, skeletonFromRecord, type SkeletonRoot } from "./skeleton-root.js";

/** What {@link skeletonForCopy} works with. */
export interface SkeletonSources {
  /** Directory the skeleton is made in (replaced). */
  dir: string;
  /** The stage's layers before the COPY, base first. */
  layers: readonly Layer[];
  stage: number;
  ignore: IgnoreList | undefined;
  report: Reporter;
  signal: AbortSignal | undefined;
  /** The layer cache and the key of the filesystem before the COPY (see skeleton-record.ts), with `--cache`. */
  cache?: { artifacts: ArtifactCache; recordKey: string } | undefined;
}

/**
 * The skeleton root a COPY works on, from the best source there is: the cache's skeleton record (laid out
 * on demand), else the layers, each read from its header copy where the cache has one; a skeleton laid out
 * from the layers is recorded in the cache for the next build. Undefined when none can be made (the caller
 * extracts the root); problems with the cache's data are warnings.
 */
export async function skeletonForCopy(o: SkeletonSources): Promise<SkeletonRoot | undefined> {
  const t0 = Date.now();
  const done = (sk: SkeletonRoot, how: string): SkeletonRoot => {
    const ms = Date.now() - t0;
    o.report({
      kind: "info",
      message: `Stage ${o.stage}'s filesystem is needed only where this COPY writes: ${how} in ${ms} ms instead of extracting them`,
    });
    o.report({ kind: "phase", phase: "extract", ms, stage: o.stage });
    return sk;
  };
  const cache = o.cache;
  const data = cache ? await cache.artifacts.skeletonRecord(cache.recordKey, o.signal) : undefined;
  if (cache && data) {
    try {
      const sk = await skeletonFromRecord(o.dir, decodeSkeletonRecord(data, cache.recordKey));
      return done(
        sk,
        `its ${o.layers.length} layers' directories and symlinks (${sk.index.size} paths) come from the skeleton record in ${cache.artifacts.description}, laid out where the COPY goes,`,
      );
    } catch (e) {
      if (o.signal?.aborted) throw e;
      cache.artifacts.skeletonRecordUnusable(cache.recordKey);
      o.report({
        kind: "warning",
        code: "SKELETON_RECORD_UNUSABLE",
        message: `the skeleton record of stage ${o.stage} in ${cache.artifacts.description} is unusable (${errorMessage(e)}); reading the layers instead`,
      });
    }
  }
  try {
    const sk = await buildSkeletonRoot(o.dir, o.layers, {
      ignore: o.ignore,
      report: o.report,
      signal: o.signal,
      ...(cache
        ? {
            copies: {
              find: (l: Layer) => cache.artifacts.headerCopy(l, o.signal),
              capture: (l: Layer) => cache.artifacts.captureHeaders(l, o.signal),
              unusable: (l: Layer) => cache.artifacts.headerCopyUnusable(l),
            },
          }
        : {}),
    });
    if (cache)
      cache.artifacts.putSkeletonRecord(cache.recordKey, () => recordOfSkeleton(sk, cache.recordKey), o.signal);
    const copies =
      sk.fromCopies > 0 ? `; ${sk.fromCopies} read from header copies in ${cache?.artifacts.description}` : "";
    return done(
      sk,
      `laid out its ${o.layers.length} layers' directories and symlinks (${sk.index.size} paths${copies})`,
    );
  } catch (e) {
    if (o.signal?.aborted) throw e;
    o.report({ kind: "debug", message: `stage ${o.stage}: skeleton root not built (${String(e)}); extracting` });
    return undefined;
  }
}
