import { KilnError } from "../../common/errors.js";
import type { ByteSource } from "./byte-source.js";
import { BLOCK, readNumber } from "./fields.js";

/** One data segment of a sparse file: `numbytes` stored bytes placed at `offset` of the expanded file. */
export interface SparseSegment {
  offset: number;
  numbytes: number;
}

/** Reads `count` (offset, numbytes) pairs of 12-byte numeric fields starting at `off` in `block`. */
export function readOldGnuSparse(block: Buffer, off: number, count: number, entry: string): SparseSegment[] {
  const out: SparseSegment[] = [];
  for (let i = 0; i < count; i++) {
    const base = off + i * 24;
    if (block[base] === 0) break;
    out.push({
      offset: readNumber(block, [base, 12], "sparse offset", entry),
      numbytes: readNumber(block, [base + 12, 12], "sparse numbytes", entry),
    });
  }
  return out;
}

/**
 * Reads the GNU sparse 1.0 map stored at the start of the entry data: decimal numbers each ending
 * with "\n" (count, then count offset/numbytes pairs), padded to a block. Returns the map and the
 * number of bytes it occupied. Bounded by `maxBytes`.
 */
export async function readSparseMap10(
  src: ByteSource,
  entry: string,
  maxBytes: number,
): Promise<{ segments: SparseSegment[]; bytes: number }> {
  let text = "";
  let bytes = 0;
  const numbers: number[] = [];
  let count = -1;
  while (count < 0 || numbers.length < 1 + 2 * count) {
    if (bytes >= maxBytes) throw new KilnError("TAR_INVALID", `sparse map of ${JSON.stringify(entry)} is too large`);
    const block = await src.readExact(BLOCK, `sparse map of ${JSON.stringify(entry)}`);
    bytes += BLOCK;
    text += block.toString("latin1");
    const parts = text.split("\n");
    text = parts.pop() ?? "";
    for (const p of parts) {
      if (count >= 0 && numbers.length >= 1 + 2 * count) break;
      if (!/^[0-9]{1,16}$/.test(p)) {
        throw new KilnError("TAR_INVALID", `malformed sparse map of ${JSON.stringify(entry)}: ${JSON.stringify(p)}`);
      }
      numbers.push(Number(p));
      if (numbers.length === 1) count = numbers[0] ?? 0;
    }
  }
  const segments: SparseSegment[] = [];
  for (let i = 0; i < count; i++) {
    segments.push({ offset: numbers[1 + 2 * i] ?? 0, numbytes: numbers[2 + 2 * i] ?? 0 });
  }
  return { segments, bytes };
}

/** Parses a GNU.sparse.map (0.1) value "off,size,off,size,...". */
export function parseSparseMap01(value: string, entry: string): SparseSegment[] {
  if (value === "") return [];
  const nums = value.split(",");
  if (nums.length % 2 !== 0 || nums.some((n) => !/^[0-9]{1,16}$/.test(n))) {
    throw new KilnError("TAR_INVALID", `malformed GNU.sparse.map for ${JSON.stringify(entry)}`);
  }
  const out: SparseSegment[] = [];
  for (let i = 0; i < nums.length; i += 2) out.push({ offset: Number(nums[i]), numbytes: Number(nums[i + 1]) });
  return out;
}

/** Checks that segments are ordered, non-overlapping, inside `realSize` and add up to `stored` bytes. */
export function validateSparse(segments: SparseSegment[], realSize: number, stored: number, entry: string): void {
  let end = 0;
  let total = 0;
  for (const s of segments) {
    if (s.offset < end || s.offset + s.numbytes > realSize) {
      throw new KilnError(
        "TAR_INVALID",
        `sparse map of ${JSON.stringify(entry)} has overlapping or out-of-range segments`,
      );
    }
    end = s.offset + s.numbytes;
    total += s.numbytes;
  }
  if (total !== stored) {
    throw new KilnError(
      "TAR_INVALID",
      `sparse map of ${JSON.stringify(entry)} describes ${total} data bytes but the entry stores ${stored}`,
    );
  }
}
