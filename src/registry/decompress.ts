import { pipeline, Readable } from "node:stream";
import * as zlib from "node:zlib";
import { KilnError } from "../common/errors.js";

type ZstdFactory = () => NodeJS.ReadWriteStream;

/** The compression of a blob judged by its magic bytes. */
export function sniffCompression(head: Uint8Array): "gzip" | "zstd" | "none" {
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  return "none";
}

/**
 * Decompresses a layer stream whatever its compression (gzip, zstd where Node supports it, or
 * none), detected from its first bytes. Errors of the source (e.g. a digest mismatch) propagate.
 * Private stand-in until src/image exports its own `decompressAuto`.
 */
export function decompressAuto(src: Readable): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    let head = Buffer.alloc(0);
    let done = false;
    while (head.length < 4) {
      const r = await it.next();
      if (r.done === true) {
        done = true;
        break;
      }
      head = Buffer.concat([head, r.value]);
    }
    async function* rest(): AsyncGenerator<Buffer> {
      if (head.length > 0) yield head;
      if (done) return;
      for (;;) {
        const r = await it.next();
        if (r.done === true) return;
        yield r.value;
      }
    }
    const kind = sniffCompression(head);
    if (kind === "none") {
      yield* rest();
      return;
    }
    let dec: NodeJS.ReadWriteStream;
    if (kind === "gzip") dec = zlib.createGunzip();
    else {
      const factory = (zlib as unknown as { createZstdDecompress?: ZstdFactory }).createZstdDecompress;
      if (factory === undefined) {
        src.destroy();
        throw new KilnError(
          "UNSUPPORTED_COMPRESSION",
          "a zstd-compressed layer cannot be decompressed by this Node.js version (needs Node.js 22.15+)",
        );
      }
      dec = factory();
    }
    const out = pipeline(Readable.from(rest(), { objectMode: false }), dec, () => undefined);
    try {
      for await (const chunk of out) yield chunk as Buffer;
    } catch (e) {
      // Corrupt compressed data usually means a corrupt download: read the source to its end so
      // its own verification error (DIGEST_MISMATCH naming the blob) wins over zlib's message.
      if (e instanceof KilnError) throw e;
      for (;;) {
        const r = await it.next();
        if (r.done === true) break;
      }
      throw new KilnError("LAYER_CORRUPT", `layer data cannot be decompressed: ${(e as Error).message}`, { cause: e });
    }
  }
  return Readable.from(gen(), { objectMode: false });
}
