import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";

function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString("hex")}.tmp`);
}

/** Writes a file via a unique temp file and rename, so readers never see a partial file. */
export async function writeAtomic(file: string, data: Uint8Array | string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = tempName(file);
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Streams `src` (through `via`, e.g. a digest check) into a file via a unique temp file and rename. */
export async function streamAtomic(file: string, src: Readable, via: Transform, signal?: AbortSignal): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = tempName(file);
  try {
    await pipeline(src, via, createWriteStream(tmp), ...(signal ? [{ signal }] : []));
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** True when `file` exists with exactly `size` bytes. */
export async function hasSize(file: string, size: number): Promise<boolean> {
  const st = await stat(file).catch(() => undefined);
  return st?.isFile() === true && st.size === size;
}
