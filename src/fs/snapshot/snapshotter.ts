import { mkdir, rm } from "node:fs/promises";
import * as path from "node:path";
import { KilnError } from "../../common/errors.js";
import type { Changes } from "../changes.js";
import type { FileIndex } from "../file-index.js";
import type { IgnoreList } from "../ignore-list.js";
import { walkChanges } from "../walk-changes.js";
import { mergeOverlayUpper } from "./overlay-upper.js";

/** The directories of an overlay mounted over a stage root for one RUN (see kiln-exec `--overlay`). */
export interface OverlayDirs {
  /** Lower directories, topmost first (the stage root itself for a per-step overlay). */
  lower: string[];
  /** Fresh, empty upper directory: after the step it holds exactly the step's changes. */
  upper: string;
  /** Overlay work directory (same filesystem as `upper`). */
  work: string;
  /**
   * File (not yet existing) the runner has kiln-exec write its listing of `upper` to once the step's
   * processes are gone (`--list-upper`), so that the snapshot need not walk it; absent or unusable, the
   * snapshot walks the upper itself.
   */
  listing?: string | undefined;
}

/** Options shared by {@link Snapshotter} calls. */
export interface SnapshotOptions {
  ignore?: IgnoreList | undefined;
  signal?: AbortSignal | undefined;
  /** Overlay back-end, root an overlay mount: stacks a large step upper onto it (see `MergeUpperOptions.stack`). */
  stack?: ((upper: string) => Promise<boolean>) | undefined;
}

/**
 * How a RUN step's changes are found. `beforeRun` prepares the step (the overlay back-end returns the
 * overlay to mount over the root, which the runner passes on); `afterRun` returns the step's
 * {@link Changes} with the root holding the step's result and `index` up to date; `discard` drops a
 * prepared step that did not complete.
 */
export interface Snapshotter {
  readonly kind: "overlay" | "walk";
  beforeRun(root: string): Promise<OverlayDirs | undefined>;
  afterRun(root: string, index: FileIndex, opts?: SnapshotOptions): Promise<Changes>;
  discard(root: string): Promise<void>;
}

/** The metadata-walk back-end: an lstat walk of the whole root against the index. Works everywhere. */
export class WalkSnapshotter implements Snapshotter {
  readonly kind = "walk";

  beforeRun(): Promise<OverlayDirs | undefined> {
    return Promise.resolve(undefined);
  }

  afterRun(root: string, index: FileIndex, opts: SnapshotOptions = {}): Promise<Changes> {
    return walkChanges(root, index, { ignore: opts.ignore, signal: opts.signal, update: true });
  }

  discard(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * The overlay back-end: the step runs on an overlay whose lower directory is the stage root and whose
 * upper directory (a sibling `<root>.overlay/upper`, same filesystem so merging is rename-only) collects
 * the step's changes; `afterRun` translates and merges it ({@link mergeOverlayUpper}). Cost grows with
 * the change. Needs a runner that mounts the overlay in the step's private mount namespace, as root
 * (overlay whiteouts and `trusted.*` xattrs).
 */
export class OverlaySnapshotter implements Snapshotter {
  readonly kind = "overlay";

  async beforeRun(root: string): Promise<OverlayDirs> {
    const base = scratchOf(root);
    await rm(base, { recursive: true, force: true });
    const upper = path.join(base, "upper");
    const work = path.join(base, "work");
    await mkdir(upper, { recursive: true, mode: 0o755 });
    await mkdir(work, { recursive: true, mode: 0o700 });
    return { lower: [path.resolve(root)], upper, work, listing: path.join(base, LISTING) };
  }

  async afterRun(root: string, index: FileIndex, opts: SnapshotOptions = {}): Promise<Changes> {
    const base = scratchOf(root);
    try {
      return await mergeOverlayUpper(root, path.join(base, "upper"), index, {
        ...opts,
        listing: path.join(base, LISTING),
      });
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  }

  async discard(root: string): Promise<void> {
    await rm(scratchOf(root), { recursive: true, force: true });
  }
}

/** Name of kiln-exec's listing of the upper in a step's overlay scratch dir (next to upper/ and work/). */
const LISTING = "upper.list";

function scratchOf(root: string): string {
  return path.resolve(root) + ".overlay";
}

/** The `--overlay` argument of kiln-exec for `dirs` (LOWER[:LOWER…]:UPPER:WORK); paths must not hold ':' or ','. */
export function overlayHelperArgument(dirs: OverlayDirs): string {
  const all = [...dirs.lower, dirs.upper, dirs.work];
  for (const p of all) {
    if (p.includes(":") || p.includes(",")) {
      throw new KilnError(
        "SNAPSHOT_OVERLAY",
        `overlay directory ${p} contains ':' or ',' which overlay mount options cannot express; use a state directory without them`,
      );
    }
  }
  return all.join(":");
}
