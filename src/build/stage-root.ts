import { mkdir, rm } from "node:fs/promises";
import { KilnError } from "../common/errors.js";
import { applyLayer, FileIndex, type IgnoreList } from "../fs/index.js";
import type { Layer } from "../image/types.js";
import { cleanRoot } from "./clean-root.js";
import type { Reporter } from "./events.js";

/**
 * The materialised root filesystem of one stage: a directory under kiln's state dir plus the index
 * of everything in it. Created lazily — a stage whose steps never touch the filesystem never
 * downloads or extracts its base layers. Concurrent `ensure` calls share one extraction.
 */
export class StageRoot {
  readonly dir: string;
  readonly index = new FileIndex();
  private ready = false;
  private pending: Promise<void> | undefined;
  private readonly extractRetries: number;
  private readonly inPlace: IgnoreList | undefined;

  /**
   * `extractRetries`: how often a failed extraction is retried from scratch (`--image-fs-extract-retry`).
   * `inPlace`: the root is a live filesystem (the in-place back-end's "/"): instead of deleting the
   * directory, extraction first cleans it except what this ignore list protects.
   */
  constructor(dir: string, extractRetries = 0, inPlace?: IgnoreList) {
    this.dir = dir;
    this.extractRetries = Math.max(0, extractRetries);
    this.inPlace = inPlace;
  }

  get materialized(): boolean {
    return this.ready;
  }

  /** Extracts `layers` (base first) into the root if that has not happened yet. */
  ensure(
    layers: readonly Layer[],
    ignore: IgnoreList | undefined,
    report: Reporter,
    stage: number,
    signal?: AbortSignal,
  ): Promise<void> {
    if (this.ready) return Promise.resolve();
    this.pending ??= this.extract(layers, ignore, report, stage, signal).then(
      () => {
        this.ready = true;
      },
      (e: unknown) => {
        this.pending = undefined;
        throw e;
      },
    );
    return this.pending;
  }

  private async extract(
    layers: readonly Layer[],
    ignore: IgnoreList | undefined,
    report: Reporter,
    stage: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const t0 = Date.now();
    for (let attempt = 0; ; attempt++) {
      this.index.deleteTree("/");
      if (this.inPlace) {
        await cleanRoot(this.dir, this.inPlace, signal);
      } else {
        await rm(this.dir, { recursive: true, force: true });
        await mkdir(this.dir, { recursive: true, mode: 0o755 });
      }
      try {
        for (const layer of layers) {
          const stream = await layer.openUncompressed(signal);
          const r = await applyLayer(this.dir, stream, { index: this.index, ignore, signal });
          for (const s of r.skipped)
            report({ kind: "warning", code: "EXTRACT_SKIPPED", message: `${s.path}: ${s.reason}` });
        }
        break;
      } catch (e) {
        if (signal?.aborted || attempt >= this.extractRetries) throw e;
        const why = e instanceof Error ? e.message : String(e);
        report({
          kind: "warning",
          code: "EXTRACT_RETRY",
          message: `extracting the filesystem of stage ${stage} failed (${why}); retry ${attempt + 1} of ${this.extractRetries}`,
        });
      }
    }
    report({ kind: "phase", phase: "extract", ms: Date.now() - t0, stage });
  }

  /**
   * Hands this root over to a stage built FROM it (its only user): the directory and index move
   * without re-extraction. This root is unusable afterwards.
   * @throws KilnError INTERNAL when the root is not materialised.
   */
  handOver(): StageRoot {
    if (!this.ready) throw new KilnError("INTERNAL", `stage root ${this.dir} handed over before extraction`);
    const next = new StageRoot(this.dir, this.extractRetries, this.inPlace);
    for (const p of this.index.paths()) {
      const e = this.index.get(p);
      if (e) next.index.set(p, e);
    }
    next.ready = true;
    this.ready = false;
    this.pending = Promise.reject(new KilnError("INTERNAL", `stage root ${this.dir} was handed over`));
    this.pending.catch(() => {});
    return next;
  }

  /** Deletes the root from disk (in place: everything not ignored). */
  async remove(): Promise<void> {
    this.ready = false;
    this.pending = undefined;
    if (this.inPlace) await cleanRoot(this.dir, this.inPlace);
    else await rm(this.dir, { recursive: true, force: true });
  }
}
