/**
 * Compresses one file with kiln's own compressor (`compressStream`, what layer spooling uses) and discards
 * the output: the kiln side of the compression primitive benchmark. Run compiled:
 * `node dist/bench/compress-kiln.js gzip|zstd FILE`.
 */
import { createReadStream } from "node:fs";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { compressStream } from "../src/image/index.js";

const [kind, file] = process.argv.slice(2);
if ((kind !== "gzip" && kind !== "zstd") || file === undefined) {
  console.error("usage: compress-kiln gzip|zstd FILE");
  process.exit(2);
}
let bytes = 0;
await pipeline(
  createReadStream(file, { highWaterMark: 1 << 20 }),
  compressStream(kind),
  new Writable({
    write(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      cb();
    },
  }),
);
console.log(bytes);
