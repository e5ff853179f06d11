import type { Readable } from "node:stream";
import { KilnError } from "../../common/errors.js";

/**
 * Pull-based reader over a Readable: exact reads, bounded partial reads and skips, without
 * concatenating more than needed. Not safe for concurrent calls; the tar reader serialises them.
 */
export class ByteSource {
  private readonly iter: AsyncIterator<unknown>;
  private chunks: Buffer[] = [];
  private head = 0; // offset into chunks[0]
  private buffered = 0;
  private ended = false;
  /** Total bytes handed out or skipped so far (for error messages). */
  position = 0;

  constructor(input: Readable) {
    this.iter = input[Symbol.asyncIterator]();
  }

  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.iter.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    const v = r.value;
    const chunk = typeof v === "string" ? Buffer.from(v) : Buffer.isBuffer(v) ? v : Buffer.from(v as Uint8Array);
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    return true;
  }

  /** Reads exactly n bytes, or returns what is left (possibly fewer) at end of input. */
  async readAtMost(n: number): Promise<Buffer> {
    while (this.buffered < n && (await this.pull()));
    const take = Math.min(n, this.buffered);
    const parts: Buffer[] = [];
    let need = take;
    while (need > 0) {
      const c = this.chunks[0] as Buffer;
      const avail = c.length - this.head;
      const k = Math.min(avail, need);
      parts.push(c.subarray(this.head, this.head + k));
      need -= k;
      this.consume(k);
    }
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, take);
  }

  /** Reads exactly n bytes; throws TAR_INVALID (truncated, naming `what`) at premature end of input. */
  async readExact(n: number, what: Label): Promise<Buffer> {
    const b = await this.readAtMost(n);
    if (b.length < n) throw truncated(what, this.position);
    return b;
  }

  /** Returns between 1 and n bytes without copying; throws TAR_INVALID naming `what` at end of input. */
  async readSome(n: number, what: Label): Promise<Buffer> {
    if (this.buffered === 0) {
      while (this.buffered === 0 && (await this.pull()));
      if (this.buffered === 0) throw truncated(what, this.position);
    }
    const c = this.chunks[0] as Buffer;
    const k = Math.min(n, c.length - this.head);
    const out = c.subarray(this.head, this.head + k);
    this.consume(k);
    return out;
  }

  /** Discards exactly n bytes; throws TAR_INVALID naming `what` at premature end of input. */
  async skip(n: number, what: Label): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0 && !(await this.pull())) throw truncated(what, this.position);
      const c = this.chunks[0];
      if (c === undefined) continue;
      const k = Math.min(left, c.length - this.head);
      this.consume(k);
      left -= k;
    }
  }

  /** Reads and discards everything up to the end of the input. */
  async drain(): Promise<void> {
    this.chunks = [];
    this.head = 0;
    this.buffered = 0;
    while (await this.pull()) {
      this.position += this.buffered;
      this.chunks = [];
      this.buffered = 0;
    }
  }

  /** Stops the underlying iterator (destroys the input stream). */
  async close(): Promise<void> {
    await this.iter.return?.();
  }

  private consume(k: number): void {
    this.head += k;
    this.buffered -= k;
    this.position += k;
    const c = this.chunks[0];
    if (c !== undefined && this.head >= c.length) {
      this.chunks.shift();
      this.head = 0;
    }
  }
}

/** What a read is of, for its error message: text, or a function making it (formatted only on error). */
export type Label = string | (() => string);

function truncated(what: Label, pos: number): KilnError {
  const text = typeof what === "string" ? what : what();
  return new KilnError("TAR_INVALID", `tar archive is truncated: unexpected end of input in ${text} (byte ${pos})`);
}
