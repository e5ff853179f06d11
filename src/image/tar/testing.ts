import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { PassThrough, Readable } from "node:stream";
import { encodePax } from "./pax.js";
import { readTar, type ReadTarOptions } from "./reader.js";
import type { TarHeader } from "./types.js";
import { TarWriter } from "./writer.js";

/** A fresh temporary directory and its cleanup (test helper). */
export function tempDir(prefix = "kiln-tar-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs a command synchronously and returns stdout (test helper). */
export function run(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** Writes the given entries with TarWriter into a Buffer (test helper). */
export async function writeToBuffer(entries: { header: TarHeader; body?: Uint8Array }[]): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on("data", (c: Buffer) => chunks.push(c));
  const w = new TarWriter(out);
  for (const e of entries) await w.add(e.header, e.body);
  await w.finish();
  return Buffer.concat(chunks);
}

/** Reads every entry of a tar held in memory, with bodies (test helper). */
export async function readAll(
  data: Buffer | Readable,
  opts?: ReadTarOptions,
): Promise<{ header: TarHeader; body: Buffer }[]> {
  const input = Buffer.isBuffer(data) ? Readable.from([data]) : data;
  const out: { header: TarHeader; body: Buffer }[] = [];
  for await (const e of readTar(input, opts)) {
    const chunks: Buffer[] = [];
    for await (const c of e.body) chunks.push(c as Buffer);
    out.push({ header: e.header, body: Buffer.concat(chunks) });
  }
  return out;
}

/** `data` padded with zeros to whole 512-byte blocks (test helper). */
export function padBlocks(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

/** A raw ustar header block with a valid checksum, for hand-made (hostile) archives (test helper). */
export function rawHeader(name: string, flag: string, size: number): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100, "utf8");
  b.write("0000644\0", 100);
  b.write("0000000\0", 108);
  b.write("0000000\0", 116);
  b.write(`${size.toString(8).padStart(11, "0")}\0`, 124);
  b.write("00000000000\0", 136);
  b.write(flag, 156);
  b.write("ustar\u000000", 257);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (b[i] ?? 0);
  b.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  return b;
}

/** A PAX extended header (`flag` "x" or "g") holding `records`: header block and padded data (test helper). */
export function paxHeader(flag: string, records: [string, Buffer][]): Buffer {
  const data = encodePax(records);
  return Buffer.concat([rawHeader("PaxHeaders/p", flag, data.length), padBlocks(data)]);
}

/** A GNU sparse 1.0 entry `name`: `realSize` bytes holding `data` at `offset`, holes elsewhere (test helper). */
export function sparse10Entry(name: string, realSize: number, offset: number, data: Buffer): Buffer {
  const map = padBlocks(Buffer.from(`1\n${offset}\n${data.length}\n`));
  return Buffer.concat([
    paxHeader("x", [
      ["GNU.sparse.major", Buffer.from("1")],
      ["GNU.sparse.minor", Buffer.from("0")],
      ["GNU.sparse.name", Buffer.from(name)],
      ["GNU.sparse.realsize", Buffer.from(String(realSize))],
    ]),
    rawHeader(`GNUSparseFile.0/${name}`, "0", map.length + data.length),
    map,
    padBlocks(data),
  ]);
}
