import { mkdir, rm } from "node:fs/promises";
import { applyLayer, FileIndex, type IgnoreList } from "../fs/index.js";
import type { Layer } from "../image/types.js";
import type { Reporter } from "./events.js";

/**
 * The materialised root filesystem of one stage: a directory under kiln's state dir plus the index
 * of everything in it. Created lazily — a stage whose steps never touch the filesystem never
 * downloads or extracts its base layers.
 */
export class StageRoot {
  readonly dir: string;
  readonly index = new FileIndex();
  private ready = false;

  constructor(dir: string) {
    this.dir = dir;
  }

  get materialized(): boolean {
    return this.ready;
  }

  /** Extracts `layers` (base first) into the root if that has not happened yet. */
  async ensure(
    layers: readonly Layer[],
    ignore: IgnoreList | undefined,
    report: Reporter,
    stage: number,
    signal?: AbortSignal,
  ): Promise<void> {
    if (this.ready) return;
    await rm(this.dir, { recursive: true, force: true });
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    const t0 = Date.now();
    for (const layer of layers) {
      const stream = await layer.openUncompressed(signal);
      const r = await applyLayer(this.dir, stream, { index: this.index, ignore, signal });
      for (const s of r.skipped)
        report({ kind: "warning", code: "EXTRACT_SKIPPED", message: `${s.path}: ${s.reason}` });
    }
    report({ kind: "phase", phase: "extract", ms: Date.now() - t0, stage });
    this.ready = true;
  }

  /** Deletes the root from disk. */
  async remove(): Promise<void> {
    this.ready = false;
    await rm(this.dir, { recursive: true, force: true });
  }
}
