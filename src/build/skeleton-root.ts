import { mkdir, rm } from "node:fs/promises";
import { FileIndex, type ColumnarIndex, type IgnoreList } from "../fs/index.js";
import { containerDirname } from "../fs/clean-path.js";
import type { HeaderCapture } from "../cache/index.js";
import type { Layer } from "../image/types.js";
import { applyCaptured } from "./apply-captured.js";
import type { Reporter } from "./events.js";
import { LazySkeleton } from "./lazy-skeleton.js";
import { encodeSkeletonRecord, laidOut, type RecordedPath } from "./skeleton-record.js";

/**
 * A stand-in for a stage root that one COPY needs and nothing after it does: the directories and symlinks
 * of the stage's layers, created with the metadata a full extraction gives them (applyLayer's skeleton
 * mode), and `others`, the paths where the layers hold anything else (files, hardlinks, devices, FIFOs),
 * which the skeleton leaves out. A COPY resolves its destination through the same directories and symlinks
 * here as in the full root; the layer it produces is the same as long as it needs no directory where
 * `others` holds a path ({@link skeletonHolds}). Laid out from the layers (or their header copies in the
 * cache), it saves creating their files; laid out on demand from a skeleton record, it also saves reading
 * them.
 */
export interface SkeletonRoot {
  dir: string;
  index: FileIndex;
  others: { has(p: string): boolean };
  /** How many of the layers were read from their header copies. */
  fromCopies: number;
  /** Set when the skeleton is laid out on demand from a record: the COPY resolves its paths through it. */
  lazy?: LazySkeleton;
}

/** A skeleton laid out in full from the layers: `others` can be listed (for its record). */
export interface LaidOutSkeleton extends SkeletonRoot {
  others: ReadonlySet<string>;
}

/** The record of a skeleton laid out in full (see skeleton-record.ts). */
export function recordOfSkeleton(sk: LaidOutSkeleton, key: string): Buffer {
  return encodeSkeletonRecord(key, [...entriesOf(sk.index), ...[...sk.others].map((p) => [p, "file"] as const)]);
}

/** The record of an extracted root's filesystem, from its index. */
export function recordOfIndex(index: FileIndex, key: string): Buffer {
  return encodeSkeletonRecord(key, entriesOf(index));
}

function* entriesOf(index: FileIndex): Iterable<[string, RecordedPath]> {
  for (const p of index.paths()) {
    const e = index.get(p);
    if (e !== undefined) yield [p, e];
  }
}

/**
 * A skeleton root in `dir` (replaced) laid out on demand from `record`: its index sits on the record, and
 * `others` are the record's paths that are neither directories nor symlinks.
 */
export async function skeletonFromRecord(dir: string, record: ColumnarIndex): Promise<SkeletonRoot> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const others = {
    has: (p: string): boolean => {
      const i = record.find(p);
      return i >= 0 && !laidOut(record.entryAt(i).type);
    },
  };
  return { dir, index: FileIndex.fromBase(record), others, fromCopies: 0, lazy: new LazySkeleton(dir, record) };
}

/** Where a skeleton finds the layers' header copies and captures missing ones (the layer cache). */
export interface SkeletonHeaderCopies {
  /** The header copy of `layer` (never rejects; undefined: none). */
  find(layer: Layer): Promise<Layer | undefined>;
  capture(layer: Layer): HeaderCapture | undefined;
  /** The copy found for `layer` could not be read (it is then written over by a new capture). */
  unusable(layer: Layer): void;
}

/** A header copy that failed while it was laid out (the layer itself is read instead). */
class CopyFailed extends Error {
  constructor(
    readonly layer: Layer,
    readonly reason: unknown,
  ) {
    super(`the header copy of ${layer.diffId} failed: ${reason instanceof Error ? reason.message : String(reason)}`);
  }
}

interface SkeletonOptions {
  ignore?: IgnoreList | undefined;
  report: Reporter;
  signal?: AbortSignal | undefined;
  copies?: SkeletonHeaderCopies | undefined;
}

/**
 * Builds a {@link SkeletonRoot} of `layers` (base first) in `dir` (replaced), reading each layer's header
 * copy where `opts.copies` has one (all looked up at once). Should that fail, the skeleton is laid out
 * again from the layers themselves (a warning). Throws what applyLayer throws; the caller then extracts
 * the root as usual.
 */
export async function buildSkeletonRoot(
  dir: string,
  layers: readonly Layer[],
  opts: SkeletonOptions,
): Promise<LaidOutSkeleton> {
  const copies = opts.copies;
  if (copies === undefined) return layOut(dir, layers, opts, []);
  const found = layers.map((l) => copies.find(l));
  try {
    return await layOut(dir, layers, opts, found);
  } catch (e) {
    if (opts.signal?.aborted || !(e instanceof CopyFailed)) throw e;
    copies.unusable(e.layer);
    opts.report({
      kind: "warning",
      code: "HEADER_COPY_UNUSABLE",
      message: `laying out the skeleton root from the cache's header copies failed (${e.message}); reading the layers instead`,
    });
    return layOut(dir, layers, opts, []);
  }
}

async function layOut(
  dir: string,
  layers: readonly Layer[],
  opts: SkeletonOptions,
  found: readonly Promise<Layer | undefined>[],
): Promise<LaidOutSkeleton> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const index = new FileIndex();
  const others = new Set<string>();
  let fromCopies = 0;
  for (const [i, layer] of layers.entries()) {
    const copy = await found[i];
    if (copy) fromCopies++;
    const apply = async () =>
      applyCaptured(
        dir,
        await (copy ?? layer).openUncompressed(opts.signal),
        { index, ignore: opts.ignore, signal: opts.signal, skeletonOf: others },
        copy ? undefined : opts.copies?.capture(layer),
      );
    const r = copy
      ? await apply().catch((e: unknown) => {
          throw opts.signal?.aborted ? e : new CopyFailed(layer, e);
        })
      : await apply();
    for (const s of r.skipped)
      opts.report({ kind: "debug", message: `skeleton root: ${s.path} not applied (${s.reason})` });
  }
  return { dir, index, others, fromCopies };
}

/**
 * True when what a step did on the skeleton is what it would have done on the full root, judged from
 * `paths`, the container paths it wrote or changed (after its snapshot updated the skeleton's index), and
 * `wereDirs`, those of its reported paths that were directories of the image before it:
 * - no proper ancestor of `paths` is in `others` (on the full root the step would have met a file where it
 *   needed a directory, an error);
 * - none of `paths` is in `others` with a directory now (ambiguous: a COPY replaces a file by its
 *   directory, but creates a missing parent where the full root has a file and fails);
 * - none of `wereDirs` is still a directory: the COPY re-stamped a directory of the image without writing
 *   below it, and its snapshot walks that directory, which on the full root holds the image's files.
 * A file or symlink the step wrote over a path of `others` is fine: COPY removes whatever lies at a path
 * before it writes there, so the replaced entry never mattered.
 */
export function skeletonHolds(sk: SkeletonRoot, paths: readonly string[], wereDirs: readonly string[]): boolean {
  if (wereDirs.some((p) => sk.index.get(p)?.type === "dir")) return false;
  const checked = new Set<string>();
  for (const p of paths) {
    if (sk.others.has(p) && sk.index.get(p)?.type === "dir") return false;
    for (let d = containerDirname(p); d !== "/" && !checked.has(d); d = containerDirname(d)) {
      if (sk.others.has(d)) return false;
      checked.add(d);
    }
  }
  return true;
}
