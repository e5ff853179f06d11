import { spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import { chmod, lchown, link, lstat, lutimes, mkdir, open, rm, symlink, utimes } from "node:fs/promises";
import { PassThrough, type Readable } from "node:stream";
import { KilnError } from "../../common/errors.js";
import { SpecialNodes, cleanContainerPath, resolveInRoot, toContainerPath, xattrRequest } from "../../fs/index.js";
import { XattrQueue } from "../../fs/xattr.js";
import { decompressStream, readTar } from "../../image/index.js";
import type { TarEntry } from "../../image/tar/index.js";

/** Compression of an archive, detected from its first bytes like Docker does. */
export type ArchiveCompression = "gzip" | "bzip2" | "xz" | "zstd" | "none";

/** Detects gzip, bzip2, xz and zstd by their magic numbers ("none" otherwise). */
export function detectArchiveCompression(head: Uint8Array): ArchiveCompression {
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return "bzip2";
  if ([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00].every((b, i) => head[i] === b)) return "xz";
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  return "none";
}

/** True when a 512-byte block is a valid tar header (its checksum field matches). */
export function isTarHeader(block: Uint8Array): boolean {
  if (block.length < 512) return false;
  const field = Buffer.from(block.subarray(148, 156)).toString("latin1").replace(/\0.*$/, "").trim();
  if (!/^[0-7]+$/.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] as number);
  return parseInt(field, 8) === sum;
}

async function readHead(file: string, n: number): Promise<Buffer> {
  const fh = await open(file, "r");
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** A stream of the decompressed content of `file` (bzip2 and xz through the `bzip2`/`xz` programs). */
function decompressedFile(file: string, kind: ArchiveCompression): Readable {
  const input = createReadStream(file);
  if (kind === "none") return input;
  if (kind === "gzip" || kind === "zstd") {
    const t = decompressStream(kind);
    input.on("error", (e) => t.destroy(e));
    t.once("close", () => input.destroy()); // a reader that stops early (the archive probe) closes the file
    return input.pipe(t);
  }
  const tool = kind === "bzip2" ? "bzip2" : "xz";
  const out = new PassThrough();
  const child = spawn(tool, ["-dc"], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
  child.on("error", (e) =>
    out.destroy(
      new KilnError("ADD_DECOMPRESS", `cannot run ${tool} to decompress ${file}: ${e.message}; install ${tool}`, {
        cause: e,
      }),
    ),
  );
  child.on("close", (code) => {
    if (code !== 0 && code !== null)
      out.destroy(new KilnError("ADD_DECOMPRESS", `${tool} failed to decompress ${file}: ${stderr.trim()}`));
  });
  child.stdin.on("error", () => undefined);
  input.pipe(child.stdin);
  child.stdout.pipe(out);
  out.on("close", () => {
    input.destroy();
    if (child.exitCode === null) child.kill();
  });
  return out;
}

/**
 * Writes a file entry's body to the new file `host` (mode 0600 until the caller sets it): pieces at
 * their offsets and the size set at the end, so the holes of a sparse entry take no disk space.
 */
async function writeFileEntry(host: string, entry: TarEntry): Promise<void> {
  const fh = await open(host, "w", 0o600);
  try {
    for await (const { offset, data } of entry.pieces()) {
      let off = 0;
      while (off < data.length) off += (await fh.write(data, off, data.length - off, offset + off)).bytesWritten;
    }
    await fh.truncate(entry.header.size);
  } finally {
    await fh.close();
  }
}

/**
 * Whether `file` is a tar archive (plain or gzip/bzip2/xz/zstd-compressed), decided by content like
 * Docker: the decompressed stream must start with a valid tar header. A `.gz` that is not a tar is not an archive.
 */
export async function isArchive(file: string): Promise<ArchiveCompression | undefined> {
  const kind = detectArchiveCompression(await readHead(file, 6));
  const s = decompressedFile(file, kind);
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of s) {
      const b = Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array);
      chunks.push(b);
      n += b.length;
      if (n >= 512) break;
    }
  } catch {
    return undefined; // corrupt compressed data: not an archive, copied as a file
  } finally {
    s.destroy();
  }
  return isTarHeader(Buffer.concat(chunks)) ? kind : undefined;
}

/**
 * Extracts a tar archive into the container directory `destDir` of `root` (Docker's ADD): every
 * path derived through {@link resolveInRoot} (symlinks already in the root are followed inside it,
 * `..` entries and hardlinks leaving the archive's root are refused), implied parents created
 * 0755, owners from the archive unless `owner` maps them, modes and mtimes kept, xattrs restored
 * (security.capability, user.*, trusted.*; the capability is what the snapshot keeps). Block/char
 * devices (as root) and FIFOs are created like Docker's untar does; one that cannot be created here
 * is skipped and named in `skipped`. `.wh.` names are ordinary files here (not a layer). Returns the
 * container paths written.
 */
export async function extractArchive(
  root: string,
  destDir: string,
  file: string,
  label: string,
  owner: (src: { uid: number; gid: number }) => { uid: number; gid: number },
  signal?: AbortSignal,
): Promise<{ written: string[]; skipped: { path: string; reason: string }[] }> {
  const kind = (await isArchive(file)) ?? "none";
  const written: string[] = [];
  const skipped: { path: string; reason: string }[] = [];
  const xattrs = new XattrQueue();
  const failed = (list: readonly { path: string; reason: string }[]): void => {
    for (const s of list) skipped.push({ path: toContainerPath(root, s.path), reason: s.reason });
  };
  const nodes = new SpecialNodes();
  const dirTimes: { host: string; mtime: Date }[] = [];
  const implied = owner({ uid: 0, gid: 0 });
  const ensureParent = async (cpath: string): Promise<void> => {
    const parts = cpath.split("/").filter(Boolean);
    parts.pop();
    let cur = "";
    for (const p of parts) {
      cur = `${cur}/${p}`;
      const h = await resolveInRoot(root, cur, { followFinal: true });
      const st = await lstat(h).catch(() => undefined);
      if (st?.isDirectory()) continue;
      if (st) await rm(h, { force: true });
      // `h` is resolved inside the root; components still missing below it are plain names.
      await mkdir(h, { recursive: true });
      await lchown(h, implied.uid, implied.gid);
      await chmod(h, 0o755);
      written.push(toContainerPath(root, h));
    }
  };
  // An entry body not read is skipped by the reader (no stream is made for it).
  for await (const entry of readTar(decompressedFile(file, kind))) {
    const h = entry.header;
    signal?.throwIfAborted();
    const name = h.name.replace(/^\.?\/+/, "");
    if (name.includes("\0") || name.split("/").includes("..")) {
      throw new KilnError(
        "ADD_UNSAFE_ARCHIVE",
        `${label}: entry ${JSON.stringify(h.name)} climbs out of the destination`,
      );
    }
    if (name === "" || name === ".") {
      continue;
    }
    const cpath = cleanContainerPath(`${destDir}/${name}`);
    await ensureParent(cpath);
    const host = await resolveInRoot(root, cpath, { followFinal: false });
    const own = owner({ uid: h.uid, gid: h.gid });
    const mtime = new Date(h.mtime * 1000);
    const existing = await lstat(host).catch(() => undefined);
    xattrs.delete(host); // an earlier entry's attributes do not carry over to one that replaces it
    switch (h.type) {
      case "dir":
        if (existing && !existing.isDirectory()) await rm(host, { force: true, recursive: true });
        if (!existing?.isDirectory()) await mkdir(host);
        await lchown(host, own.uid, own.gid);
        await chmod(host, h.mode & 0o7777);
        dirTimes.push({ host, mtime });
        break;
      case "file": {
        if (existing) await rm(host, { force: true, recursive: true });
        await writeFileEntry(host, entry);
        await lchown(host, own.uid, own.gid);
        await chmod(host, h.mode & 0o7777);
        await utimes(host, mtime, mtime);
        break;
      }
      case "symlink":
        if (existing) await rm(host, { force: true, recursive: true });
        await symlink(h.linkname, host);
        await lchown(host, own.uid, own.gid);
        await lutimes(host, mtime, mtime);
        break;
      case "hardlink": {
        const tname = h.linkname.replace(/^\.?\/+/, "");
        if (tname.split("/").includes("..")) {
          throw new KilnError(
            "ADD_UNSAFE_ARCHIVE",
            `${label}: hardlink ${JSON.stringify(h.name)} points outside the archive`,
          );
        }
        const target = await resolveInRoot(root, cleanContainerPath(`${destDir}/${tname}`), { followFinal: false });
        if (existing) await rm(host, { force: true, recursive: true });
        await link(target, host);
        break;
      }
      case "char":
      case "block":
      case "fifo": {
        if (existing) await rm(host, { force: true, recursive: true });
        const failure = await nodes.create(host, {
          type: h.type,
          mode: h.mode,
          devmajor: h.devmajor,
          devminor: h.devminor,
        });
        if (failure !== undefined) {
          skipped.push({ path: cpath, reason: failure });
          // What was there is gone all the same: the snapshot must record the deletion.
          if (existing) written.push(toContainerPath(root, host));
          continue;
        }
        await lchown(host, own.uid, own.gid);
        await chmod(host, h.mode & 0o7777);
        await utimes(host, mtime, mtime);
        break;
      }
      default:
        continue; // tar-internal types are not extracted
    }
    if (h.xattrs.size > 0 && h.type !== "hardlink") {
      const x = xattrRequest(host, h);
      if (x.request !== undefined) failed(await xattrs.add(x.request));
      for (const reason of x.skipped) skipped.push({ path: cpath, reason });
    }
    written.push(toContainerPath(root, host));
  }
  failed(await xattrs.flush());
  for (const d of dirTimes.reverse()) await utimes(d.host, d.mtime, d.mtime);
  return { written, skipped };
}
