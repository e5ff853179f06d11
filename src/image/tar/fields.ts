import { KilnError } from "../../common/errors.js";

/** Size of a tar block. */
export const BLOCK = 512;

/** Byte offsets and widths of the ustar / GNU header fields. */
export const F = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  version: [263, 2],
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155],
  gnuAtime: [345, 12],
  gnuCtime: [357, 12],
  gnuSparse: [386, 96],
  gnuIsExtended: [482, 1],
  gnuRealSize: [483, 12],
} as const satisfies Record<string, readonly [number, number]>;

/** Reads a NUL-terminated string field as UTF-8. */
export function readString(block: Buffer, [off, len]: readonly [number, number]): string {
  const field = block.subarray(off, off + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul === -1 ? len : nul).toString("utf8");
}

/**
 * Parses a numeric field: octal text (spaces/NULs tolerated) or GNU base-256 (high bit set, big-endian
 * two's complement). Throws TAR_INVALID naming `what` (and the entry `of`, when given) when the field is
 * malformed or not a safe integer; the name is only formatted then (this runs ~8 times per header).
 */
export function readNumber(block: Buffer, [off, len]: readonly [number, number], what: string, of?: string): number {
  const first = block[off] ?? 0;
  if (first & 0x80) return readBase256(block.subarray(off, off + len), what, of);
  // Octal text: the digits between optional whitespace, up to the first NUL (what the slow path below
  // accepts, byte by byte).
  let i = off;
  const end = off + len;
  while (i < end && isSpace(block[i] as number)) i++;
  let v = 0;
  for (; i < end; i++) {
    const b = block[i] as number;
    if (b < 0x30 || b > 0x37) break;
    v = v * 8 + (b - 0x30);
  }
  while (i < end && isSpace(block[i] as number)) i++;
  if (i === end || block[i] === 0) {
    if (!Number.isSafeInteger(v)) throw fieldError(what, of, "is out of range");
    return v;
  }
  return readOctalText(block.subarray(off, end), what, of);
}

/** Whitespace as String.prototype.trim sees it, among latin1 bytes. */
function isSpace(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d) || b === 0xa0;
}

/** The general octal parse (text cut at the first NUL and trimmed); for fields the fast path refused. */
function readOctalText(field: Buffer, what: string, of: string | undefined): number {
  const text = field.toString("latin1").replace(/\0.*$/s, "").trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw fieldError(what, of, `is not an octal number: ${JSON.stringify(text)}`);
  const v = parseInt(text, 8);
  if (!Number.isSafeInteger(v)) throw fieldError(what, of, "is out of range");
  return v;
}

function readBase256(field: Buffer, what: string, of: string | undefined): number {
  const negative = field[0] === 0xff;
  let v = 0n;
  // Positive: the marker bit is not part of the value. Negative (0xff first): two's complement of the
  // whole field, so every byte is inverted and the value is -(inverted + 1).
  for (let i = 0; i < field.length; i++) {
    let b = field[i] ?? 0;
    if (negative) b = ~b & 0xff;
    else if (i === 0) b &= 0x7f;
    v = (v << 8n) | BigInt(b);
  }
  if (negative) v = -(v + 1n);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw fieldError(what, of, "is out of range");
  }
  return Number(v);
}

function fieldError(what: string, of: string | undefined, problem: string): KilnError {
  const field = of === undefined ? what : `${what} of ${JSON.stringify(of)}`;
  return new KilnError("TAR_INVALID", `tar header field ${field} ${problem}`);
}

/** Computes the header checksum (unsigned and signed sums) with the checksum field read as spaces. */
export function checksums(block: Buffer): { unsigned: number; signed: number } {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0);
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return { unsigned, signed };
}

/** Writes a string into a field (truncated to the field width; the rest stays NUL). */
export function writeString(block: Buffer, [off, len]: readonly [number, number], value: string | Buffer): void {
  const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value;
  bytes.copy(block, off, 0, Math.min(len, bytes.length));
}

/** Writes an octal numeric field (digits zero-padded, NUL-terminated); `value` must fit. */
export function writeOctal(block: Buffer, [off, len]: readonly [number, number], value: number): void {
  const text = Math.trunc(value)
    .toString(8)
    .padStart(len - 1, "0");
  block.write(text, off, len - 1, "latin1");
  block[off + len - 1] = 0;
}

/** Largest value an octal field of `len` bytes can hold. */
export function octalMax(len: number): number {
  return 8 ** (len - 1) - 1;
}

/** Fills in the checksum field of a header block. */
export function writeChecksum(block: Buffer): void {
  const { unsigned } = checksums(block);
  block.write(unsigned.toString(8).padStart(6, "0"), 148, 6, "latin1");
  block[154] = 0;
  block[155] = 0x20;
}

/** True when the block is all zeros (end-of-archive marker). */
export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}
