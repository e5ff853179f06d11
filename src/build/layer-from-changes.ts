import { changesTarStream, type Changes } from "../fs/index.js";
import { spoolLayer } from "../image/index.js";
import type { Compression } from "../image/media-types.js";
import type { Layer } from "../image/types.js";

/** Where and how new layers are written. */
export interface LayerSink {
  blobsDir: string;
  compression: Compression;
  level?: number;
  mediaType: string;
  epoch?: number;
}

/**
 * Turns a change set into a spooled, content-addressed layer (digest, diffID and size known), or
 * undefined when nothing changed (the step then gets an `empty_layer` history entry).
 */
export async function layerFromChanges(
  root: string,
  changes: Changes,
  sink: LayerSink,
  signal?: AbortSignal,
  opts: { force?: boolean } = {},
): Promise<Layer | undefined> {
  const empty = changes.changed.length === 0 && changes.deleted.length === 0 && changes.opaqueDirs.length === 0;
  if (empty && !opts.force) return undefined;
  const tar = changesTarStream(root, changes, { epoch: sink.epoch });
  return spoolLayer(tar, {
    dir: sink.blobsDir,
    compression: sink.compression,
    level: sink.level,
    mediaType: sink.mediaType,
    signal,
  });
}
