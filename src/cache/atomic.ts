import type { Readable, Transform } from "node:stream";
import { hasFileOfSize, streamToFileAtomic, writeFileAtomic } from "../image/index.js";

/** Writes a file via a unique temp file and rename, so readers never see a partial file. */
export const writeAtomic = writeFileAtomic;

/** Streams `src` (through `via`, e.g. a digest check) into a file via a unique temp file and rename. */
export function streamAtomic(file: string, src: Readable, via: Transform, signal?: AbortSignal): Promise<void> {
  return streamToFileAtomic(file, src, signal, via);
}

/** True when `file` exists with exactly `size` bytes. */
export const hasSize = hasFileOfSize;
