import { createHash } from "node:crypto";
import { Transform, type Readable, type TransformCallback } from "node:stream";
import { KilnError } from "../../common/errors.js";
import type { Digest } from "../digest.js";
import type { Layer } from "../types.js";

/**
 * A pass-through Transform that hashes what flows through it and fails with KilnError
 * DIGEST_MISMATCH (naming the expected digest and size) at end of stream when the sha256 or the
 * byte count differs from what was expected — or as soon as more bytes than expected arrive.
 * Use it on every untrusted blob.
 */
export function verifyingStream(expected: Digest, expectedSize?: number): Transform {
  const hash = createHash("sha256");
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      size += chunk.length;
      if (expectedSize !== undefined && size > expectedSize) {
        cb(
          new KilnError(
            "DIGEST_MISMATCH",
            `blob ${expected} is larger than its expected size of ${expectedSize} bytes; the source is corrupt or was tampered with`,
          ),
        );
        return;
      }
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      const actual = `sha256:${hash.digest("hex")}`;
      if (expectedSize !== undefined && size !== expectedSize) {
        cb(
          new KilnError(
            "DIGEST_MISMATCH",
            `blob ${expected} has ${size} bytes, expected ${expectedSize}; the source is truncated or corrupt`,
          ),
        );
      } else if (actual !== expected) {
        cb(
          new KilnError(
            "DIGEST_MISMATCH",
            `blob ${expected} (${size} bytes) has digest ${actual}; the source is corrupt or was tampered with`,
          ),
        );
      } else {
        cb();
      }
    },
  });
}

/** A pass-through Transform that records the sha256 and byte count of what flows through it. */
export class HashingTap extends Transform {
  private readonly hash = createHash("sha256");
  /** Bytes seen so far. */
  size = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }

  /** The digest of everything that passed; call once, after the stream has finished. */
  digest(): Digest {
    return `sha256:${this.hash.digest("hex")}` as Digest;
  }
}

/**
 * Pipes `source` through {@link verifyingStream} and returns the verified stream; errors of the source
 * reach the result, and destroying the result releases the source.
 */
export function verified(source: Readable, expected: Digest, expectedSize?: number): Readable {
  const v = verifyingStream(expected, expectedSize);
  source.on("error", (e) => v.destroy(e));
  v.on("close", () => {
    if (!source.destroyed) source.destroy();
  });
  return source.pipe(v);
}

/**
 * The compressed blob of `layer`, verified against its digest and size: by the layer itself when it
 * {@link Layer.verifiesCompressed}, else through {@link verified}.
 */
export async function openVerifiedCompressed(layer: Layer, signal?: AbortSignal): Promise<Readable> {
  const src = await layer.openCompressed(signal);
  return layer.verifiesCompressed ? src : verified(src, layer.digest, layer.size);
}
