import { KilnError } from "../../common/errors.js";

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/**
 * Parses a size such as `500MB`, `20GiB`, `1.5g` or `1048576` into bytes (case-insensitive; KB/MB/GB/TB
 * are powers of 1000, KiB/MiB/GiB/TiB and the bare K/M/G/T powers of 1024).
 * @throws KilnError SIZE_INVALID for anything else.
 */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = UNITS[(m?.[2] ?? "").toLowerCase()];
  if (!m || unit === undefined) {
    throw new KilnError(
      "SIZE_INVALID",
      `invalid size ${JSON.stringify(text)}: use a number with an optional unit such as 500MB or 20GiB`,
    );
  }
  return Math.floor(Number(m[1]) * unit);
}
