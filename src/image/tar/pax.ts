import { KilnError } from "../../common/errors.js";

/** One PAX record: key as text, value binary-exact. */
export type PaxRecord = readonly [key: string, value: Buffer];

/**
 * Parses a PAX extended header body into records in order (repeated keys kept). Records are
 * length-prefixed (`"<len> <key>=<value>\n"`), so values may contain any byte including 0x0A and 0x00.
 * Throws TAR_INVALID naming `entry` on a malformed record.
 */
export function parsePax(data: Buffer, entry: string): PaxRecord[] {
  const out: PaxRecord[] = [];
  let pos = 0;
  while (pos < data.length) {
    // Trailing NUL padding after the last record is tolerated.
    if (data[pos] === 0) break;
    const sp = data.indexOf(0x20, pos);
    const bad = (why: string): never => {
      throw new KilnError("TAR_INVALID", `malformed PAX header for ${JSON.stringify(entry)} at byte ${pos}: ${why}`);
    };
    if (sp === -1 || sp - pos > 20) bad("missing record length");
    const lenText = data.toString("latin1", pos, sp);
    if (!/^[0-9]+$/.test(lenText)) bad(`bad record length ${JSON.stringify(lenText)}`);
    const len = Number(lenText);
    const end = pos + len;
    if (len <= sp - pos + 1 || end > data.length) bad("record length out of bounds");
    if (data[end - 1] !== 0x0a) bad("record does not end with a newline");
    const eq = data.indexOf(0x3d, sp + 1);
    if (eq === -1 || eq >= end - 1) bad("record has no '='");
    const key = data.toString("utf8", sp + 1, eq);
    if (key === "") bad("empty key");
    out.push([key, Buffer.from(data.subarray(eq + 1, end - 1))]);
    pos = end;
  }
  return out;
}

/** Serialises records into a PAX header body; each record's length prefix counts its own digits. */
export function encodePax(records: readonly PaxRecord[]): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of records) {
    const keyBytes = Buffer.from(key, "utf8");
    const rest = keyBytes.length + value.length + 3; // ' ' '=' '\n'
    let len = rest + String(rest).length;
    if (String(len).length + rest !== len) len = rest + String(len).length;
    parts.push(Buffer.from(`${len} `, "latin1"), keyBytes, Buffer.from("="), value, Buffer.from("\n"));
  }
  return Buffer.concat(parts);
}

/** Formats seconds for a PAX time record: integer or decimal with up to 9 fractional digits, no exponent. */
export function formatPaxTime(t: number): string {
  if (Number.isInteger(t)) return String(t);
  const neg = t < 0;
  const abs = Math.abs(t);
  let whole = Math.floor(abs);
  let nanos = Math.round((abs - whole) * 1e9);
  if (nanos >= 1e9) {
    whole += 1;
    nanos -= 1e9;
  }
  const frac = String(nanos).padStart(9, "0").replace(/0+$/, "");
  return `${neg ? "-" : ""}${whole}${frac ? `.${frac}` : ""}`;
}

/** Parses a PAX time record (`[-]digits[.digits]`); throws TAR_INVALID naming `entry` otherwise. */
export function parsePaxTime(value: Buffer, key: string, entry: string): number {
  const text = value.toString("latin1");
  if (!/^-?[0-9]{1,20}(\.[0-9]*)?$/.test(text)) {
    throw new KilnError("TAR_INVALID", `bad PAX ${key} ${JSON.stringify(text)} for ${JSON.stringify(entry)}`);
  }
  return Number(text);
}

/** Parses a PAX decimal integer record; throws TAR_INVALID naming `entry` when not a safe non-negative integer. */
export function parsePaxInt(value: Buffer, key: string, entry: string): number {
  const text = value.toString("latin1");
  const n = Number(text);
  if (!/^[0-9]{1,16}$/.test(text) || !Number.isSafeInteger(n)) {
    throw new KilnError("TAR_INVALID", `bad PAX ${key} ${JSON.stringify(text)} for ${JSON.stringify(entry)}`);
  }
  return n;
}
