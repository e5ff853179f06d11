import type { Readable } from "node:stream";
import { KilnError } from "../../common/errors.js";
import { ByteSource } from "./byte-source.js";
import { makeEntryBody, type TarPiece } from "./entry-body.js";
import { BLOCK, F, checksums, isZeroBlock, readNumber, readString } from "./fields.js";
import { parsePax, parsePaxInt, parsePaxTime, type PaxRecord } from "./pax.js";
import { PaxGlobals } from "./pax-globals.js";
import { parseSparseMap01, readOldGnuSparse, readSparseMap10, validateSparse, type SparseSegment } from "./sparse.js";
import type { TarEntry, TarEntryType, TarHeader } from "./types.js";

/** Options for {@link readTar}. */
export interface ReadTarOptions {
  /**
   * Largest PAX extended header (and sparse map) accepted, in bytes; also the most bytes of global PAX
   * records in force at once. Default 1 MiB.
   */
  maxPaxBytes?: number;
  /**
   * Most bytes of holes (expanded size beyond the stored data) the sparse entries of one archive may
   * declare in total. Default 64 GiB: a 3 KiB entry may otherwise claim a petabyte of zeros.
   */
  maxSparseHoleBytes?: number;
}

/** Default of {@link ReadTarOptions.maxSparseHoleBytes}. */
export const MAX_SPARSE_HOLE_BYTES = 64 * 1024 ** 3;

const MAX_LONG_NAME = 64 * 1024;
const CHUNK = 64 * 1024;

function padding(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

function invalid(message: string): KilnError {
  return new KilnError("TAR_INVALID", message);
}

/**
 * Streams the entries of a tar archive (ustar, PAX, GNU, v7). If the consumer does not read an
 * entry's body, the next iteration skips it. Throws KilnError TAR_INVALID (bad checksum, truncated
 * archive, oversized or malformed extension records, sparse holes beyond the limit) naming the entry.
 * Applies PAX global headers (their keys that change entries, see PaxGlobals), GNU long names and all
 * GNU sparse formats (bodies come back expanded, holes as zeros; `pieces()` leaves the holes out). After
 * the end-of-archive marker the rest of the input is read and discarded.
 */
export async function* readTar(input: Readable, opts?: ReadTarOptions): AsyncGenerator<TarEntry> {
  const maxPax = opts?.maxPaxBytes ?? 1024 * 1024;
  const maxHoles = opts?.maxSparseHoleBytes ?? MAX_SPARSE_HOLE_BYTES;
  const src = new ByteSource(input);
  const globals = new PaxGlobals(maxPax);
  let holeBytes = 0; // holes declared by the sparse entries so far
  let local: PaxRecord[] = [];
  let longName: string | undefined;
  let longLink: string | undefined;
  let lastName = "(start of archive)";
  let extBytes = 0; // PAX bytes pending for the next entry
  let globalBytes = 0; // PAX bytes of all global headers so far
  let completed = false;
  try {
    for (;;) {
      const block = await src.readAtMost(BLOCK);
      if (block.length === 0) break;
      if (block.length < BLOCK) throw invalid(`tar archive is truncated after ${JSON.stringify(lastName)}`);
      if (isZeroBlock(block)) break;

      const rawName = readString(block, F.name);
      const where = longName ?? rawName;
      const stored = readNumber(block, F.chksum, "checksum", where);
      const sums = checksums(block);
      if (stored !== sums.unsigned && stored !== sums.signed) {
        throw invalid(
          `tar header checksum mismatch at ${JSON.stringify(where)} (byte ${src.position - BLOCK}, after ${JSON.stringify(lastName)}): not a tar archive or corrupted`,
        );
      }
      const flag = String.fromCharCode(block[156] ?? 0);
      const size = readNumber(block, F.size, "size", where);
      if (size < 0) throw invalid(`negative size in tar header of ${JSON.stringify(where)}`);

      // Extension headers: consume and continue with the entry they describe.
      if (flag === "x" || flag === "g" || flag === "X") {
        if (size > maxPax) {
          throw invalid(`PAX header of ${JSON.stringify(where)} is ${size} bytes, more than the limit of ${maxPax}`);
        }
        const data = await src.readExact(size, `PAX header of ${JSON.stringify(where)}`);
        await src.skip(padding(size), `PAX header of ${JSON.stringify(where)}`);
        const records = parsePax(data, where);
        // Consecutive extension headers accumulate: bound their total as well.
        extBytes = flag === "g" ? extBytes : extBytes + size;
        globalBytes = flag === "g" ? globalBytes + size : globalBytes;
        if (extBytes > maxPax || globalBytes > maxPax * 16) {
          throw invalid(`PAX headers before ${JSON.stringify(where)} exceed the limit of ${maxPax} bytes`);
        }
        if (flag === "g") {
          globals.update(records, where);
        } else {
          local.push(...records);
        }
        continue;
      }
      if (flag === "L" || flag === "K") {
        if (size > MAX_LONG_NAME) {
          throw invalid(`GNU long name after ${JSON.stringify(lastName)} is ${size} bytes, more than ${MAX_LONG_NAME}`);
        }
        const data = await src.readExact(size, `GNU long name after ${JSON.stringify(lastName)}`);
        await src.skip(padding(size), `GNU long name after ${JSON.stringify(lastName)}`);
        const nul = data.indexOf(0);
        const text = data.subarray(0, nul === -1 ? data.length : nul).toString("utf8");
        if (flag === "L") longName = text;
        else longLink = text;
        continue;
      }
      if (flag === "M") throw invalid(`multi-volume tar archives are not supported (${JSON.stringify(where)})`);
      if (flag === "V" || flag === "N") {
        await src.skip(size + padding(size), `GNU header ${flag} of ${JSON.stringify(where)}`);
        continue;
      }

      // A real entry.
      const magic = block.toString("latin1", 257, 263);
      const posix = magic === "ustar\0";
      const gnu = magic === "ustar ";
      let name = rawName;
      if (posix) {
        const prefix = readString(block, F.prefix);
        if (prefix !== "") name = `${prefix}/${rawName}`;
      }
      if (longName !== undefined) name = longName;
      const linkname = longLink ?? readString(block, F.linkname);
      let type = entryType(flag);
      if ((flag === "\0" || (!posix && !gnu && flag === "0")) && name.endsWith("/")) type = "dir";

      const header: TarHeader = {
        name,
        type,
        mode: readNumber(block, F.mode, "mode", name) & 0o7777,
        uid: readNumber(block, F.uid, "uid", name),
        gid: readNumber(block, F.gid, "gid", name),
        size,
        mtime: readNumber(block, F.mtime, "mtime", name),
        linkname,
        uname: posix || gnu ? readString(block, F.uname) : "",
        gname: posix || gnu ? readString(block, F.gname) : "",
        devmajor: posix || gnu ? readNumber(block, F.devmajor, "devmajor", name) : 0,
        devminor: posix || gnu ? readNumber(block, F.devminor, "devminor", name) : 0,
        xattrs: new Map(),
        pax: new Map(),
      };

      // Apply PAX records (globals first, then this entry's; an empty local value removes a global).
      const sparse: SparseInfo =
        globals.records.length === 0 && local.length === 0
          ? NO_SPARSE
          : applyPax(header, [...globals.records, ...local], name);
      // Only times may be negative (base-256 before 1970); a negative id would mean "keep the owner" to chown.
      if (header.uid < 0 || header.gid < 0 || header.devmajor < 0 || header.devminor < 0) {
        throw invalid(`negative owner or device number in tar header of ${JSON.stringify(header.name)}`);
      }
      local = [];
      extBytes = 0;
      longName = undefined;
      longLink = undefined;
      lastName = header.name;

      // Work out the data layout: stored bytes in the archive and the segments of the expanded body.
      let storedSize = header.size;
      let segments: SparseSegment[] | undefined;
      let realSize = header.size;
      if (flag === "S") {
        segments = readOldGnuSparse(block, F.gnuSparse[0], 4, header.name);
        let extended = block[F.gnuIsExtended[0]] !== 0;
        let extBytes = 0;
        while (extended) {
          extBytes += BLOCK;
          if (extBytes > maxPax) throw invalid(`sparse map of ${JSON.stringify(header.name)} is too large`);
          const ext = await src.readExact(BLOCK, `sparse header of ${JSON.stringify(header.name)}`);
          segments.push(...readOldGnuSparse(ext, 0, 21, header.name));
          extended = ext[504] !== 0;
        }
        realSize = readNumber(block, F.gnuRealSize, "real size", header.name);
        header.type = "file";
      } else if (sparse.kind === "1.0") {
        const map = await readSparseMap10(src, header.name, maxPax);
        if (map.bytes > storedSize) throw invalid(`sparse map of ${JSON.stringify(header.name)} exceeds the entry`);
        segments = map.segments;
        storedSize -= map.bytes;
        realSize = sparse.realSize ?? storedSize;
      } else if (sparse.kind === "0.x") {
        segments = sparse.segments;
        realSize = sparse.realSize ?? storedSize;
      }
      if (segments !== undefined) {
        if (!Number.isSafeInteger(realSize) || realSize < 0) {
          throw invalid(`bad sparse size for ${JSON.stringify(header.name)}`);
        }
        validateSparse(segments, realSize, storedSize, header.name);
        header.size = realSize;
      }

      if (isHeaderOnly(header.type)) {
        // Header-only types carry no data (POSIX), except GNU dumpdirs whose listing we skip.
        if (flag === "D") await src.skip(storedSize + padding(storedSize), `dumpdir ${JSON.stringify(header.name)}`);
        header.size = 0;
        storedSize = 0;
        segments = undefined;
      }
      if (segments !== undefined) {
        holeBytes += header.size - storedSize;
        if (holeBytes > maxHoles) {
          throw invalid(
            `sparse entry ${JSON.stringify(header.name)} declares ${header.size} bytes from ${storedSize} stored: the archive's holes exceed the limit of ${maxHoles} bytes`,
          );
        }
      }

      const segs = segments ?? [{ offset: 0, numbytes: storedSize }];
      const state = { left: storedSize, pos: 0, seg: 0 };
      const total = header.size;
      const what = (): string => `body of ${JSON.stringify(header.name)}`;
      const nextPiece = async (): Promise<TarPiece | null> => {
        for (;;) {
          const s = segs[state.seg];
          if (s === undefined) {
            state.pos = total;
            return null;
          }
          state.pos = Math.max(state.pos, s.offset); // a hole: skipped, not produced
          const segEnd = s.offset + s.numbytes;
          if (state.pos < segEnd) {
            const offset = state.pos;
            const data = await src.readSome(Math.min(segEnd - state.pos, CHUNK), what);
            state.pos += data.length;
            state.left -= data.length;
            return { offset, data };
          }
          state.seg++;
        }
      };
      const body = makeEntryBody(async () => {
        for (;;) {
          if (state.pos >= total) return null;
          const s = segs[state.seg];
          if (s === undefined) {
            const n = Math.min(total - state.pos, CHUNK);
            state.pos += n;
            return Buffer.alloc(n);
          }
          if (state.pos < s.offset) {
            const n = Math.min(s.offset - state.pos, CHUNK);
            state.pos += n;
            return Buffer.alloc(n);
          }
          const segEnd = s.offset + s.numbytes;
          if (state.pos < segEnd) {
            const b = await src.readSome(Math.min(segEnd - state.pos, CHUNK), what);
            state.pos += b.length;
            state.left -= b.length;
            return b;
          }
          state.seg++;
        }
      }, nextPiece);
      yield {
        header,
        get body() {
          return body.stream;
        },
        content: () => body.readAll(),
        pieces: () => body.pieces(),
      };
      await body.abandon();
      await src.skip(state.left + padding(storedSize), what);
    }
    if (local.length > 0 || longName !== undefined || longLink !== undefined) {
      throw invalid(`tar archive ends after an extension header (after ${JSON.stringify(lastName)})`);
    }
    await src.drain();
    completed = true;
  } finally {
    if (!completed) await src.close().catch(() => undefined);
  }
}

function entryType(flag: string): TarEntryType {
  switch (flag) {
    case "1":
      return "hardlink";
    case "2":
      return "symlink";
    case "3":
      return "char";
    case "4":
      return "block";
    case "5":
    case "D":
      return "dir";
    case "6":
      return "fifo";
    default:
      return "file"; // '0', '\0', '7', 'S' and unknown types (POSIX: treat as regular file)
  }
}

function isHeaderOnly(t: TarEntryType): boolean {
  return t !== "file";
}

const NO_SPARSE: SparseInfo = { kind: "none" };

type SparseInfo =
  | { kind: "none" }
  | { kind: "0.x"; segments: SparseSegment[]; realSize: number | undefined }
  | { kind: "1.0"; realSize: number | undefined };

/** Maps PAX records onto the header fields; returns the GNU sparse information they carry. */
function applyPax(h: TarHeader, records: PaxRecord[], entry: string): SparseInfo {
  const merged = new Map<string, Buffer>();
  const sparsePairs: SparseSegment[] = [];
  let pendingOffset: number | undefined;
  for (const [k, v] of records) {
    if (k === "GNU.sparse.offset") {
      pendingOffset = parsePaxInt(v, k, entry);
      continue;
    }
    if (k === "GNU.sparse.numbytes") {
      if (pendingOffset === undefined) throw invalid(`GNU.sparse.numbytes without offset for ${JSON.stringify(entry)}`);
      sparsePairs.push({ offset: pendingOffset, numbytes: parsePaxInt(v, k, entry) });
      pendingOffset = undefined;
      continue;
    }
    if (v.length === 0) merged.delete(k);
    else merged.set(k, v);
  }
  const libarchiveXattrs: [string, Buffer][] = [];
  for (const [k, v] of merged) {
    switch (k) {
      case "path":
        h.name = v.toString("utf8");
        break;
      case "linkpath":
        h.linkname = v.toString("utf8");
        break;
      case "size":
        h.size = parsePaxInt(v, k, entry);
        break;
      case "uid":
        h.uid = parsePaxInt(v, k, entry);
        break;
      case "gid":
        h.gid = parsePaxInt(v, k, entry);
        break;
      case "uname":
        h.uname = v.toString("utf8");
        break;
      case "gname":
        h.gname = v.toString("utf8");
        break;
      case "mtime":
        h.mtime = parsePaxTime(v, k, entry);
        break;
      case "atime":
        h.atime = parsePaxTime(v, k, entry);
        break;
      case "ctime":
        h.ctime = parsePaxTime(v, k, entry);
        break;
      case "SCHILY.devmajor":
        h.devmajor = parsePaxInt(v, k, entry);
        break;
      case "SCHILY.devminor":
        h.devminor = parsePaxInt(v, k, entry);
        break;
      default:
        if (k.startsWith("SCHILY.xattr.")) {
          h.xattrs.set(k.slice("SCHILY.xattr.".length), v);
        } else if (k.startsWith("LIBARCHIVE.xattr.")) {
          libarchiveXattrs.push([k.slice("LIBARCHIVE.xattr.".length), v]);
        } else if (!k.startsWith("GNU.sparse.")) {
          h.pax.set(k, v);
        }
    }
  }
  for (const [encName, v] of libarchiveXattrs) {
    let name: string;
    try {
      name = decodeURIComponent(encName);
    } catch {
      throw invalid(`bad LIBARCHIVE.xattr name ${JSON.stringify(encName)} for ${JSON.stringify(entry)}`);
    }
    if (!h.xattrs.has(name)) h.xattrs.set(name, Buffer.from(v.toString("latin1"), "base64"));
  }

  const gnuName = merged.get("GNU.sparse.name");
  if (gnuName !== undefined) h.name = gnuName.toString("utf8");
  const realText = merged.get("GNU.sparse.realsize") ?? merged.get("GNU.sparse.size");
  const realSize = realText === undefined ? undefined : parsePaxInt(realText, "GNU.sparse.realsize", entry);
  const major = merged.get("GNU.sparse.major")?.toString("latin1");
  if (major !== undefined) {
    const minor = merged.get("GNU.sparse.minor")?.toString("latin1");
    if (major !== "1" || minor !== "0") {
      throw invalid(`unsupported GNU sparse format ${major}.${minor ?? "?"} for ${JSON.stringify(entry)}`);
    }
    return { kind: "1.0", realSize };
  }
  const map = merged.get("GNU.sparse.map");
  if (map !== undefined) return { kind: "0.x", segments: parseSparseMap01(map.toString("latin1"), entry), realSize };
  if (sparsePairs.length > 0 || merged.has("GNU.sparse.numblocks")) {
    return { kind: "0.x", segments: sparsePairs, realSize };
  }
  return { kind: "none" };
}
