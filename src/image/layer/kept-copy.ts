import { createWriteStream, type WriteStream } from "node:fs";
import { open, rename, rm, statfs } from "node:fs/promises";
import * as path from "node:path";
import { finished, Transform, type Readable, type TransformCallback } from "node:stream";
import { finished as writeFinished } from "node:stream/promises";
import { BULK_WRITE } from "../../common/bulk-write.js";
import { decompressAuto } from "../compress/compression.js";
import { digestHex } from "../digest.js";
import { tempNameFor } from "../sinks/atomic-file.js";
import type { Layer } from "../types.js";

/**
 * Passes `source` through unchanged and writes every chunk to `file` as well (a temp file renamed at the
 * end). The copy never fails the stream: a write error just ends the copy. `kept` resolves once the source
 * ended and the copy is complete on disk as `file`; it rejects when the copy failed, or the stream
 * was stopped or failed before its end (the partial copy is removed then).
 */
function teeToFile(source: Readable, file: string): { stream: Readable; kept: Promise<void> } {
  const tmp = tempNameFor(file);
  // `wx`: the temp name is new. The default mode (0666 less the umask), as every blob file kiln writes: an
  // OCI layout's copy of this file keeps its mode, and readers of the layout may run as another user.
  let writer: WriteStream | undefined = createWriteStream(tmp, { ...BULK_WRITE, flags: "wx" });
  let settle: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  const kept = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  const removeTemp = (): void => void rm(tmp, { force: true }).catch(() => undefined);
  const fail = (e: unknown): void => {
    const w = writer;
    writer = undefined;
    if (w !== undefined) {
      // Removed once the stream closed: a stream still opening would create the file after an earlier rm.
      if (w.closed) removeTemp();
      else w.once("close", removeTemp);
      w.destroy();
    }
    settle?.reject(e);
    settle = undefined;
  };
  writer.on("error", fail);
  const tee = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      const w = writer;
      if (w === undefined || w.write(chunk)) {
        cb(null, chunk);
        return;
      }
      // The copy's own back-pressure: go on once it drained, or at once when it failed.
      const go = (): void => {
        w.off("drain", go);
        w.off("error", go);
        cb(null, chunk);
      };
      w.once("drain", go);
      w.once("error", go);
    },
    flush(cb: TransformCallback) {
      const w = writer;
      if (w !== undefined) {
        w.end();
        writeFinished(w)
          .then(() => rename(tmp, file))
          .then(
            () => {
              settle?.resolve();
              settle = undefined;
            },
            (e: unknown) => fail(e),
          );
      }
      cb();
    },
    destroy(err: Error | null, cb: (error: Error | null) => void) {
      // Also after a clean end (a stream is destroyed once consumed): `settle` is gone by then.
      if (settle !== undefined && writer !== undefined && !tee.writableFinished) {
        fail(err ?? new Error("stopped before its end"));
      }
      cb(err);
    },
  });
  // An error, or a close before the end (a premature close), fails the tee as it fails the source.
  finished(source, (e) => {
    if (e) tee.destroy(e);
  });
  tee.on("close", () => {
    if (!source.destroyed) source.destroy();
  });
  return { stream: source.pipe(tee), kept };
}

/**
 * Whether the filesystem of `dir` has room for a copy of `size` bytes and for what the extraction that makes
 * it writes: at least 4× `size` free (a gzip layer's files take 2–3× its compressed size). A build on a
 * tight disk (a CI pod's ephemeral storage) keeps no copy rather than failing a later step for want of the
 * space the copy took.
 */
async function roomFor(dir: string, size: number): Promise<boolean> {
  try {
    const fs = await statfs(dir);
    return fs.bavail * fs.bsize >= 4 * size;
  } catch {
    return false;
  }
}

/**
 * `layer` (a registry layer, verified while it is read) that keeps a copy of its compressed blob in `dir`
 * the first time it is read whole for an extraction, so that what reads the compressed blob later (an OCI
 * layout or tarball output, an upload to a registry that cannot mount it) reads the local copy instead of
 * downloading the blob a second time: BuildKit too pulls a base into its content store once. The copy
 * is made only from a stream that ended, and a registry stream ends only when its bytes matched the
 * digest, so the copy is trusted as verified (it lives in the build's own directory). A read while the
 * copy is still being written goes to the registry as before: nothing ever waits for the copy, and a
 * failed copy (a full disk, an extraction stopped early) only means the blob is downloaded again; it is
 * not tried a second time, nor on a disk without room for it ({@link roomFor}). A copy whose size changed
 * later is not read (the registry is). `onKept` is called once the copy is complete. A layer that does not verify its
 * blob while it is read is returned as it is.
 */
export function keepingCopy(layer: Layer, dir: string, onKept?: (kept: Layer) => void): Layer {
  if (layer.verifiesCompressed !== true) return layer; // a copy of unverified bytes would be trusted later
  const file = path.join(dir, `kept-${digestHex(layer.digest)}`);
  let done = false;
  /** A copy is being written, or one failed (then the blob is not copied again in this build). */
  let tried = false;
  const readLocal = async (signal?: AbortSignal): Promise<Readable> => {
    try {
      const fh = await open(file, "r");
      if ((await fh.stat()).size === layer.size) return fh.createReadStream(signal ? { signal } : {});
      await fh.close();
      done = false; // the copy was changed after it was made: not used again
    } catch {
      // The build's directory is being removed: the registry still has the blob.
    }
    return layer.openCompressed(signal);
  };
  const self: Layer = Object.freeze({
    mediaType: layer.mediaType,
    digest: layer.digest,
    diffId: layer.diffId,
    size: layer.size,
    ...(layer.annotations ? { annotations: layer.annotations } : {}),
    ...(layer.origins ? { origins: layer.origins } : {}),
    verifiesCompressed: true,
    localFile: () => (done ? file : undefined),
    openCompressed: (signal?: AbortSignal): Promise<Readable> =>
      done ? readLocal(signal) : layer.openCompressed(signal),
    openUncompressed: async (signal?: AbortSignal): Promise<Readable> => {
      if (done) return decompressAuto(await readLocal(signal));
      if (tried) return layer.openUncompressed(signal);
      tried = true;
      if (!(await roomFor(dir, layer.size))) return layer.openUncompressed(signal);
      let source: Readable;
      try {
        source = await layer.openCompressed(signal);
      } catch (e) {
        tried = false; // nothing was written: a retry of the extraction may still keep the copy
        throw e;
      }
      const { stream, kept } = teeToFile(source, file);
      kept
        .then(() => {
          done = true;
          onKept?.(self);
        })
        .catch(() => undefined); // the copy is a saving, not a result: the blob is downloaded again
      return decompressAuto(stream);
    },
  });
  return self;
}
