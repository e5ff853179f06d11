// Raw ustar bytes for malformed-header security tests (no validation on purpose).

/** Fields of a hand-made ustar header; numeric fields are given as raw octal strings. */
export interface RawHeader {
  name: string;
  typeflag?: string;
  size?: string;
  mode?: string;
  linkname?: string;
  /** Overwrite the checksum with this value (to craft a bad one). */
  checksum?: string;
}

function put(buf: Buffer, off: number, len: number, s: string): void {
  buf.write(s.slice(0, len), off, "latin1");
}

/** One 512-byte ustar header with a correct checksum unless `checksum` is given. */
export function rawHeader(h: RawHeader): Buffer {
  const b = Buffer.alloc(512);
  put(b, 0, 100, h.name);
  put(b, 100, 8, (h.mode ?? "0000644") + "\0");
  put(b, 108, 8, "0000000\0");
  put(b, 116, 8, "0000000\0");
  put(b, 124, 12, (h.size ?? "00000000000") + "\0");
  put(b, 136, 12, "00000000000\0");
  put(b, 156, 1, h.typeflag ?? "0");
  put(b, 157, 100, h.linkname ?? "");
  put(b, 257, 6, "ustar\0");
  put(b, 263, 2, "00");
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  put(b, 148, 8, h.checksum ?? sum.toString(8).padStart(6, "0") + "\0 ");
  return b;
}

/** Concatenates blocks, padding bodies to 512 and appending the end-of-archive marker unless `truncate`. */
export function rawTar(parts: (Buffer | string)[], truncate = false): Buffer {
  const blocks: Buffer[] = [];
  for (const p of parts) {
    const b = typeof p === "string" ? Buffer.from(p) : p;
    blocks.push(b);
    const pad = (512 - (b.length % 512)) % 512;
    if (pad > 0) blocks.push(Buffer.alloc(pad));
  }
  if (!truncate) blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
