import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { PassThrough, Readable } from "node:stream";
import { readTar } from "./reader.js";
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
  opts?: { maxPaxBytes?: number },
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
