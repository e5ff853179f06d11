import { changesTarStream, type Changes } from "../fs/index.js";
import { MediaTypes, spoolLayer } from "../image/index.js";
import type { Compression } from "../image/media-types.js";
import type { Layer } from "../image/types.js";

/** Where and how new layers are written. */
export interface LayerSink {
  blobsDir: string;
  /** Compression and media type of the published form (image outputs and layer-cache entries). */
  compression: Compression;
  level?: number;
  mediaType: string;
  epoch?: number;
  /**
   * The stage's layers never leave the build (a stage that is neither the target nor one of its FROM
   * ancestors): spool them as plain tar. {@link publishedLayer} compresses one when it goes to the cache.
   */
  spoolUncompressed?: boolean;
}

/** True when a change set holds nothing: the step gets no layer unless one is forced. */
export function changesEmpty(changes: Changes): boolean {
  return changes.changed.length === 0 && changes.deleted.length === 0 && changes.opaqueDirs.length === 0;
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
  if (changesEmpty(changes) && !opts.force) return undefined;
  const tar = changesTarStream(root, changes, { epoch: sink.epoch });
  return spoolLayer(tar, {
    dir: sink.blobsDir,
    compression: sink.spoolUncompressed ? "none" : sink.compression,
    level: sink.level,
    mediaType: sink.spoolUncompressed ? MediaTypes.ociLayer : sink.mediaType,
    signal,
  });
}

/**
 * `layer` in the sink's published form: a layer spooled uncompressed (see
 * {@link LayerSink.spoolUncompressed}) is compressed into a new blob; any other layer is returned as is.
 * Same diffID either way, so cache keys do not depend on it.
 */
export async function publishedLayer(layer: Layer, sink: LayerSink, signal?: AbortSignal): Promise<Layer> {
  if (!sink.spoolUncompressed || layer.mediaType === sink.mediaType) return layer;
  return spoolLayer(await layer.openUncompressed(signal), {
    dir: sink.blobsDir,
    compression: sink.compression,
    level: sink.level,
    mediaType: sink.mediaType,
    signal,
  });
}
