import { randomBytes } from "node:crypto";
import { mkdir, open, rename, rm } from "node:fs/promises";
import * as path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { BULK_WRITE } from "../../common/bulk-write.js";
import { KilnError } from "../../common/errors.js";
import { compressStream, decompressAuto } from "../compress/compression.js";
import { digestHex, type Digest } from "../digest.js";
import type { Compression } from "../media-types.js";
import type { BlobOrigin, Layer } from "../types.js";
import { HashingTap, verified } from "./verifying-stream.js";

/** Options for {@link spoolLayer}. */
export interface SpoolOptions {
  /** Directory receiving `sha256-<hex>` blob files. */
  dir: string;
  compression: Compression;
  level?: number;
  mediaType: string;
  signal?: AbortSignal;
  annotations?: Record<string, string>;
}

/**
 * Spools an uncompressed layer tar to a content-addressed file in ONE streaming pass: computes the
 * diffID (sha256 of the input), compresses, computes the blob digest and size, and renames a temp
 * file to `${dir}/sha256-<hex>`. Never holds the layer in memory.
 */
export async function spoolLayer(uncompressedTar: Readable, opts: SpoolOptions): Promise<Layer> {
  await mkdir(opts.dir, { recursive: true });
  const tmp = path.join(opts.dir, `.spool-${randomBytes(8).toString("hex")}.tmp`);
  const input = new HashingTap();
  // Uncompressed: the blob is the tar itself, so one hash gives digest and diffID (no second pass).
  const plain = opts.compression === "none";
  const output = plain ? input : new HashingTap();
  // The temp file is opened before the pipeline starts: a write stream that is still opening when an
  // abort destroys it would otherwise create the file after the cleanup below removed it.
  const fh = await open(tmp, "w");
  try {
    const sig = opts.signal ? [{ signal: opts.signal }] : [];
    if (plain) await pipeline(uncompressedTar, input, fh.createWriteStream(BULK_WRITE), ...sig);
    else
      await pipeline(
        uncompressedTar,
        input,
        compressStream(opts.compression, opts.level),
        output,
        fh.createWriteStream(BULK_WRITE),
        ...sig,
      );
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    if (e instanceof KilnError) throw e;
    throw new KilnError("LAYER_SPOOL_FAILED", `could not write layer to ${opts.dir}: ${String(e)}`, { cause: e });
  }
  const digest = output.digest();
  const file = path.join(opts.dir, `sha256-${digestHex(digest)}`);
  await rename(tmp, file);
  return layerFromBlobFile(file, {
    mediaType: opts.mediaType,
    digest,
    diffId: plain ? digest : input.digest(),
    size: output.size,
    ...(opts.annotations ? { annotations: opts.annotations } : {}),
  });
}

/** Descriptor data for {@link layerFromBlobFile}. */
export interface BlobFileLayerInfo {
  mediaType: string;
  digest: Digest;
  diffId: Digest;
  size: number;
  origins?: BlobOrigin[];
  annotations?: Record<string, string>;
  /** Verify the blob against digest and size on every read (for files that were not written by kiln). */
  verify?: boolean;
}

/**
 * Wraps an existing compressed blob file whose digests are already known. Each open returns a new
 * stream; the uncompressed view detects gzip / zstd / plain from the content.
 */
export function layerFromBlobFile(file: string, d: BlobFileLayerInfo): Layer {
  // The file is opened before the stream is handed out: a blob that is gone (deleted by a concurrent writer
  // or a prune) rejects the open, instead of erroring a stream nobody listens to yet.
  const openBlob = async (signal?: AbortSignal): Promise<Readable> => {
    const fh = await open(file, "r");
    const raw = fh.createReadStream(signal ? { signal } : {});
    return d.verify ? verified(raw, d.digest, d.size) : raw;
  };
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    diffId: d.diffId,
    size: d.size,
    ...(d.annotations ? { annotations: d.annotations } : {}),
    ...(d.origins ? { origins: d.origins } : {}),
    // A file not verified on read is one kiln wrote itself (spoolLayer): sinks may copy it as it is.
    ...(d.verify ? { verifiesCompressed: true } : { localFile: () => file }),
    openCompressed: (signal?: AbortSignal) => openBlob(signal),
    openUncompressed: async (signal?: AbortSignal) => decompressAuto(await openBlob(signal)),
  };
}
