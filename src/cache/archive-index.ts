import { open } from "node:fs/promises";
import { KilnError } from "../common/errors.js";

/** Where a member's data lies in an uncompressed tar file. */
export interface MemberRange {
  offset: number;
  size: number;
}

function field(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const nul = s.indexOf(0);
  return (nul < 0 ? s : s.subarray(0, nul)).toString("utf8");
}

function octal(b: Buffer, off: number, len: number): number {
  if ((b[off] as number) & 0x80) {
    // GNU base-256 encoding
    let v = 0;
    for (let i = 1; i < len; i++) v = v * 256 + (b[off + i] as number);
    return v;
  }
  const s = field(b, off, len).trim();
  return s === "" ? 0 : parseInt(s, 8);
}

function paxPath(data: Buffer): string | undefined {
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(data.subarray(i, sp).toString("ascii"), 10);
    if (!(len > 0)) break;
    const rec = data.subarray(sp + 1, i + len - 1).toString("utf8");
    const eq = rec.indexOf("=");
    if (rec.slice(0, eq) === "path") return rec.slice(eq + 1);
    i += len;
  }
  return undefined;
}

/**
 * Indexes the regular files of an uncompressed tar (a docker-archive such as the warmer writes)
 * by name, reading only the headers, so members can later be streamed by byte range. Handles
 * ustar prefixes, PAX `path` and GNU long names.
 */
export async function indexTar(file: string): Promise<Map<string, MemberRange>> {
  const fh = await open(file, "r");
  const out = new Map<string, MemberRange>();
  try {
    const total = (await fh.stat()).size;
    const hdr = Buffer.alloc(512);
    let pos = 0;
    let longName: string | undefined;
    while (pos + 512 <= total) {
      await fh.read(hdr, 0, 512, pos);
      if (hdr.every((x) => x === 0)) break;
      const size = octal(hdr, 124, 12);
      const type = String.fromCharCode(hdr[156] as number);
      const dataAt = pos + 512;
      const next = dataAt + Math.ceil(size / 512) * 512;
      if (type === "x" || type === "L") {
        if (size > 1 << 20) throw new KilnError("ARCHIVE_INVALID", `${file}: oversized tar extension header`);
        const data = Buffer.alloc(size);
        await fh.read(data, 0, size, dataAt);
        longName = type === "L" ? field(data, 0, size) : (paxPath(data) ?? longName);
      } else {
        const prefix = field(hdr, 345, 155);
        const name = longName ?? (prefix ? `${prefix}/${field(hdr, 0, 100)}` : field(hdr, 0, 100));
        longName = undefined;
        if (type === "0" || type === "\0") out.set(name.replace(/^\.\//, ""), { offset: dataAt, size });
      }
      pos = next;
    }
  } finally {
    await fh.close();
  }
  return out;
}
