import type { BigIntStats } from "node:fs";
import { readFileSync } from "node:fs";
import type { StatLike } from "../file-index.js";

/**
 * The lstat fields the overlay merge reads of an upper entry: a `BigIntStats` from Node's own walk, or a
 * {@link ListedStat} from kiln-exec's listing.
 */
export type UpperStat = StatLike & Pick<BigIntStats, "rdev" | "atimeMs" | "mtimeMs">;

/** One entry of a step's overlay upper directory. */
export interface UpperEntry {
  /** Container path ("/etc/passwd"), clean. */
  cpath: string;
  st: UpperStat;
}

/** What the merge needs of an upper directory: its entries, parents before children, and their xattrs. */
export interface UpperScan {
  entries: UpperEntry[];
  /** Container path → overlayfs's own xattrs (`trusted.overlay.*`) and `security.capability`, when any. */
  attrs: Map<string, Map<string, Buffer>>;
}

/** First bytes of a kiln-exec `--list-upper` file (format: native/kiln-exec.c `list_upper`). */
const MAGIC = Buffer.from("KLNUPL1\n", "latin1");
/** Path length marking the trailer, which holds the number of records. */
const TRAILER = 0xffffffff;
/** Bytes of the fixed stat fields of a record: 14 little-endian u64. */
const STAT_BYTES = 14 * 8;

const S_IFMT = 0o170000;
const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;
const TWO_32 = 2 ** 32;

/**
 * An upper entry's lstat as kiln-exec listed it (same values and meaning as Node's `BigIntStats`). Fields
 * are read from the listing when asked for: most entries need only a few, and a bigint per field would
 * make most of the parsing cost.
 */
export class ListedStat implements UpperStat {
  readonly #buf: Buffer;
  /** Offset of the record's stat fields in `#buf`. */
  readonly #off: number;
  /** The file type bits of `mode`, as a number (type checks without bigint arithmetic). */
  readonly #type: number;

  /** The stat fields at `off` of a listing (14 little-endian u64, see `STAT_BYTES`). */
  constructor(buf: Buffer, off: number) {
    this.#buf = buf;
    this.#off = off;
    this.#type = buf.readUInt32LE(off) & S_IFMT;
  }

  /** Field `k` as an unsigned 64-bit value. */
  #u64(k: number): bigint {
    const at = this.#off + 8 * k;
    const hi = this.#buf.readUInt32LE(at + 4);
    // Below 2^53 a number holds it exactly: one bigint instead of readBigUInt64LE's several.
    return hi < 0x200000 ? BigInt(hi * TWO_32 + this.#buf.readUInt32LE(at)) : this.#buf.readBigUInt64LE(at);
  }

  /** Fields `k` (signed seconds) and `k + 1` (nanoseconds) as nanoseconds since the epoch. */
  #ns(k: number): bigint {
    const at = this.#off + 8 * k;
    const sec = this.#buf.readInt32LE(at + 4) * TWO_32 + this.#buf.readUInt32LE(at);
    return BigInt(sec) * NS_PER_S + BigInt(this.#buf.readUInt32LE(at + 8));
  }

  get mode(): bigint {
    return this.#u64(0);
  }
  get uid(): bigint {
    return this.#u64(1);
  }
  get gid(): bigint {
    return this.#u64(2);
  }
  get nlink(): bigint {
    return this.#u64(3);
  }
  get size(): bigint {
    return this.#u64(4);
  }
  get rdev(): bigint {
    return this.#u64(5);
  }
  get ino(): bigint {
    return this.#u64(6);
  }
  get dev(): bigint {
    return this.#u64(7);
  }
  get atimeNs(): bigint {
    return this.#ns(8);
  }
  get mtimeNs(): bigint {
    return this.#ns(10);
  }
  get ctimeNs(): bigint {
    return this.#ns(12);
  }
  get atimeMs(): bigint {
    return this.atimeNs / NS_PER_MS;
  }
  get mtimeMs(): bigint {
    return this.mtimeNs / NS_PER_MS;
  }

  isFile(): boolean {
    return this.#type === 0o100000;
  }
  isDirectory(): boolean {
    return this.#type === 0o040000;
  }
  isSymbolicLink(): boolean {
    return this.#type === 0o120000;
  }
  isCharacterDevice(): boolean {
    return this.#type === 0o020000;
  }
  isBlockDevice(): boolean {
    return this.#type === 0o060000;
  }
  isFIFO(): boolean {
    return this.#type === 0o010000;
  }
}

/**
 * Parses a kiln-exec `--list-upper` file. Returns undefined for anything but a complete, well-formed
 * listing (wrong magic, truncated, trailing bytes, record count mismatch): the caller then walks the
 * upper itself.
 */
export function parseUpperListing(buf: Buffer): UpperScan | undefined {
  if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const entries: UpperEntry[] = [];
  const attrs = new Map<string, Map<string, Buffer>>();
  let off = MAGIC.length;
  const fits = (n: number): boolean => off + n <= buf.length;
  for (;;) {
    if (!fits(4)) return undefined;
    const len = buf.readUInt32LE(off);
    off += 4;
    if (len === TRAILER) {
      if (!fits(8)) return undefined;
      const count = buf.readBigUInt64LE(off);
      off += 8;
      return off === buf.length && count === BigInt(entries.length) ? { entries, attrs } : undefined;
    }
    if (len === 0 || !fits(len + STAT_BYTES + 4)) return undefined;
    const cpath = "/" + buf.toString("utf8", off, off + len);
    off += len;
    entries.push({ cpath, st: new ListedStat(buf, off) });
    off += STAT_BYTES;
    let n = buf.readUInt32LE(off);
    off += 4;
    if (n === 0) continue;
    const map = new Map<string, Buffer>();
    attrs.set(cpath, map);
    for (; n > 0; n--) {
      if (!fits(4)) return undefined;
      const nameLen = buf.readUInt32LE(off);
      if (!fits(4 + nameLen + 4)) return undefined;
      const name = buf.toString("utf8", off + 4, off + 4 + nameLen);
      off += 4 + nameLen;
      const valueLen = buf.readUInt32LE(off);
      if (!fits(4 + valueLen)) return undefined;
      map.set(name, Buffer.from(buf.subarray(off + 4, off + 4 + valueLen)));
      off += 4 + valueLen;
    }
  }
}

/** Reads and parses a kiln-exec `--list-upper` file; undefined when it is missing, unreadable or malformed. */
export function readUpperListing(file: string): UpperScan | undefined {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch {
    return undefined;
  }
  return parseUpperListing(buf);
}
