import { randomBytes } from "node:crypto";
import { constants, createWriteStream } from "node:fs";
import { copyFile, mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import * as path from "node:path";
import type { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { BULK_WRITE } from "../../common/bulk-write.js";

/** A temp file name next to `file` (same directory, so rename is atomic). */
export function tempNameFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString("hex")}.tmp`);
}

/** Writes bytes to `file` atomically (temp file in the same directory, then rename). */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = tempNameFor(file);
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Streams `source` (through `via`, e.g. a digest check, when given) into `file` atomically (temp file,
 * then rename); the temp file is removed on error.
 */
export async function streamToFileAtomic(
  file: string,
  source: Readable,
  signal?: AbortSignal,
  via?: Transform,
): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = tempNameFor(file);
  try {
    const opts = signal ? [{ signal }] : [];
    if (via) await pipeline(source, via, createWriteStream(tmp, BULK_WRITE), ...opts);
    else await pipeline(source, createWriteStream(tmp, BULK_WRITE), ...opts);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Copies the file `source` of `size` bytes to `file` atomically (temp file, then rename) with the kernel's
 * file copy (copy_file_range: no pass through user space; about 4× faster than a stream here). Throws
 * when the copy does not have `size` bytes (the source changed).
 */
export async function copyFileAtomic(source: string, file: string, size: number): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = tempNameFor(file);
  try {
    await copyFile(source, tmp, constants.COPYFILE_EXCL);
    const got = (await stat(tmp)).size;
    if (got !== size) throw new Error(`${source} has ${got} bytes, expected ${size}`);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** True when `file` exists and is a regular file of `size` bytes. */
export async function hasFileOfSize(file: string, size: number): Promise<boolean> {
  try {
    const s = await stat(file);
    return s.isFile() && s.size === size;
  } catch {
    return false;
  }
}
