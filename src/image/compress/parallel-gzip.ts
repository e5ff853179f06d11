import { availableParallelism } from "node:os";
import { Transform, type TransformCallback } from "node:stream";
import { constants, crc32, deflateRaw } from "node:zlib";

/** Bytes of input per independently compressed block. */
const BLOCK_SIZE = 256 * 1024;
/** Deflate window: the tail of the previous block primes the next one (as pigz does). */
const DICT_SIZE = 32 * 1024;

/** Order-0 entropy (bits per byte) of a block's sample from which it is stored, not deflated. */
const INCOMPRESSIBLE_BITS = 7.98;
/** Sampling stride: a prime, so that records of any length up to it are sampled in every column. */
const SAMPLE_STRIDE = 13;
/** Blocks shorter than this (the last of a stream) are always deflated. */
const MIN_SAMPLED_BLOCK = 64 * 1024;

/**
 * True when `block` looks like random bytes — compressed or encrypted content (archives, images, model
 * weights in compressed form): the order-0 entropy of every {@link SAMPLE_STRIDE}th byte is at least
 * {@link INCOMPRESSIBLE_BITS} (uniform random bytes give ~7.989 over a 256 KiB block's ~20,000 samples;
 * text, code and binaries stay far below). Deflating such a block at level 6 costs ~15× the time of
 * storing it and saves nothing (zlib then emits stored blocks anyway), so it is stored (level 0); the
 * gzip stream stays valid and deterministic for a given input and level. Written here because zlib
 * has no such shortcut; the sample costs ~20,000 array increments per 256 KiB.
 */
export function looksIncompressible(block: Uint8Array): boolean {
  if (block.length < MIN_SAMPLED_BLOCK) return false;
  const counts = new Uint32Array(256);
  let n = 0;
  for (let i = 0; i < block.length; i += SAMPLE_STRIDE) {
    counts[block[i] as number] = (counts[block[i] as number] as number) + 1;
    n++;
  }
  let bits = 0;
  for (const c of counts) {
    if (c === 0) continue;
    const p = c / n;
    bits -= p * Math.log2(p);
  }
  return bits >= INCOMPRESSIBLE_BITS;
}

interface Job {
  done: boolean;
  result: Promise<Buffer>;
  output?: Buffer;
}

function deflateBlock(input: Buffer, dictionary: Buffer | undefined, level: number, last: boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    deflateRaw(
      input,
      {
        level,
        ...(dictionary && dictionary.length > 0 ? { dictionary } : {}),
        finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
      },
      (err, out) => (err ? reject(err) : resolve(out)),
    );
  });
}

/**
 * A gzip compressor that uses every core: the input is cut into fixed-size blocks, each deflated
 * concurrently on the libuv threadpool (primed with the previous block's last 32 KiB, ended with a
 * sync flush), and the raw deflate pieces are concatenated in order into one gzip member whose CRC32
 * and ISIZE cover the whole input; blocks that look incompressible are stored ({@link looksIncompressible}).
 * Output is deterministic for a given input and level, and decompresses with gzip, pigz and zlib.
 */
export class ParallelGzip extends Transform {
  private readonly level: number;
  private readonly maxInFlight: number;
  private parts: Buffer[] = [];
  private partsLength = 0;
  private previous: Buffer | undefined;
  private readonly queue: Job[] = [];
  private crc = 0;
  private total = 0;
  private headerSent = false;

  constructor(level = 6) {
    super();
    this.level = level;
    this.maxInFlight = Math.max(2, availableParallelism()) * 2;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.sendHeader();
    this.crc = crc32(chunk, this.crc);
    this.total += chunk.length;
    this.parts.push(chunk);
    this.partsLength += chunk.length;
    while (this.partsLength >= BLOCK_SIZE) this.startBlock(this.cutBlock(BLOCK_SIZE), false);
    this.emitReady(this.maxInFlight).then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    this.sendHeader();
    this.startBlock(this.cutBlock(this.partsLength), true);
    this.emitReady(0).then(() => {
      const trailer = Buffer.alloc(8);
      trailer.writeUInt32LE(this.crc >>> 0, 0);
      trailer.writeUInt32LE(this.total % 2 ** 32, 4);
      this.push(trailer);
      cb();
    }, cb);
  }

  private sendHeader(): void {
    if (this.headerSent) return;
    this.headerSent = true;
    const xfl = this.level >= 9 ? 2 : this.level === 1 ? 4 : 0;
    // magic, CM=deflate, no flags, MTIME=0, XFL, OS=255 (unknown): no timestamps, reproducible.
    this.push(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 0xff]));
  }

  private cutBlock(n: number): Buffer {
    const all = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, this.partsLength);
    const block = Buffer.from(all.subarray(0, n)); // own copy: upstream may reuse its buffers
    const rest = all.subarray(n);
    this.parts = rest.length > 0 ? [rest] : [];
    this.partsLength = rest.length;
    return block;
  }

  private startBlock(block: Buffer, last: boolean): void {
    const dict = this.previous?.subarray(Math.max(0, this.previous.length - DICT_SIZE));
    this.previous = block;
    const level = this.level > 0 && looksIncompressible(block) ? 0 : this.level;
    const job: Job = { done: false, result: deflateBlock(block, dict, level, last) };
    job.result.then(
      (out) => {
        job.done = true;
        job.output = out;
      },
      () => {
        job.done = true;
      },
    );
    this.queue.push(job);
  }

  /** Pushes finished blocks in order; waits while more than `limit` jobs are in flight. */
  private async emitReady(limit: number): Promise<void> {
    for (;;) {
      const head = this.queue[0];
      if (head === undefined) return;
      if (!head.done && this.queue.length <= limit) return;
      const out = await head.result;
      this.queue.shift();
      this.push(out);
    }
  }
}
