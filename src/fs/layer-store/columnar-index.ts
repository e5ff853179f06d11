import { createHash } from "node:crypto";
import { endianness } from "node:os";
import type { TarEntryType } from "../../image/tar/index.js";
import type { FileIndex, FileIndexBase, IndexEntry } from "../file-index.js";

/** Format version of the stored indexes (`index.bin`, stack indexes); other versions are rebuilt. */
export const COLUMNAR_INDEX_VERSION = 2;

const MAGIC = Buffer.from("KILNIDX\0", "latin1");
/** magic (8) + sha256 of everything after it (32) + header length (4) + padding to 8. */
const PREFIX = 48;
const TYPES: readonly TarEntryType[] = ["file", "hardlink", "symlink", "char", "block", "dir", "fifo"];
const TYPE_CODE = new Map<TarEntryType, number>(TYPES.map((t, i) => [t, i]));

/** What a stored index carries besides its entries (all container paths, sorted). */
export interface ColumnarExtras {
  /** `layer` (one layer's tree) or `stack` (the merged view of ordered layers). */
  kind: "layer" | "stack";
  /** diffID (layer) or stack key; checked on load so a file never stands in for another. */
  key: string;
  whiteouts: string[];
  opaqueDirs: string[];
  implicitDirs: string[];
  /** Stack only: implied directories whose lower-layer metadata must be restored through the mount. */
  fixups: [string, IndexEntry][];
}

interface Header extends Omit<ColumnarExtras, "fixups"> {
  version: number;
  endian: string;
  count: number;
  pathChars: number;
  linkChars: number;
  /** `latin1` when every path and link target char is below U+0100 (1 byte per char), else `utf16le`. */
  encoding: "latin1" | "utf16le";
  fixups: [string, Record<string, string | number>][];
}

/** JS string order (UTF-16 code units): the order of the stored paths and of the binary search. */
function compareJs(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function entryToJson(e: IndexEntry): Record<string, string | number> {
  const o: Record<string, string | number> = {
    type: e.type,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    size: e.size,
    mtimeNs: e.mtimeNs.toString(),
    ctimeNs: e.ctimeNs.toString(),
    ino: e.ino,
    nlink: e.nlink,
  };
  if (e.linkTarget !== undefined) o.linkTarget = e.linkTarget;
  return o;
}

function entryFromJson(o: Record<string, string | number>): IndexEntry {
  const e: IndexEntry = {
    type: o.type as TarEntryType,
    mode: Number(o.mode),
    uid: Number(o.uid),
    gid: Number(o.gid),
    size: Number(o.size),
    mtimeNs: BigInt(o.mtimeNs as string),
    ctimeNs: BigInt(o.ctimeNs as string),
    ino: Number(o.ino),
    dev: 0,
    nlink: Number(o.nlink),
  };
  return typeof o.linkTarget === "string" ? { ...e, linkTarget: o.linkTarget } : e;
}

const align8 = (n: number): number => (n + 7) & ~7;

/**
 * Encodes every entry of `index` plus `extras` into kiln's columnar index file: a checksummed header
 * followed by 8-aligned columns (all paths as one NUL-separated string with UTF-16 offsets, typed
 * arrays per field, first-child / next-sibling links so children need no parsing). Loading is a
 * digest check and typed-array views over the file's bytes; entries are created only when asked for.
 */
export function encodeColumnarIndex(index: FileIndex, extras: ColumnarExtras): Buffer {
  const paths = [...index.paths()].sort(compareJs);
  const n = paths.length;
  const pos = new Map<string, number>();
  for (let i = 0; i < n; i++) pos.set(paths[i] as string, i);
  const type = new Uint8Array(n);
  const mode = new Uint32Array(n);
  const uid = new Uint32Array(n);
  const gid = new Uint32Array(n);
  const nlink = new Uint32Array(n);
  const size = new Float64Array(n);
  const ino = new Float64Array(n);
  const mtime = new BigInt64Array(n);
  const ctime = new BigInt64Array(n);
  const pathStart = new Uint32Array(n + 1);
  const linkStart = new Int32Array(n + 1);
  const firstChild = new Int32Array(n + 1).fill(-1);
  const nextSibling = new Int32Array(n).fill(-1);
  const lastChild = new Int32Array(n + 1).fill(-1);
  let pathChars = 0;
  let linkChars = 0;
  const links: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = paths[i] as string;
    const e = index.getClean(p) as IndexEntry;
    type[i] = TYPE_CODE.get(e.type) ?? 0;
    mode[i] = e.mode;
    uid[i] = e.uid;
    gid[i] = e.gid;
    nlink[i] = e.nlink;
    size[i] = e.size;
    ino[i] = e.ino;
    mtime[i] = e.mtimeNs;
    ctime[i] = e.ctimeNs;
    pathStart[i] = pathChars;
    pathChars += p.length + 1;
    linkStart[i] = e.linkTarget === undefined ? -1 : linkChars;
    if (e.linkTarget !== undefined) {
      links.push(e.linkTarget);
      linkChars += e.linkTarget.length + 1;
    }
    // Sorted order lists a parent before its children, so sibling lists come out sorted too.
    const cut = p.lastIndexOf("/");
    const parent = cut === 0 ? n : pos.get(p.slice(0, cut));
    if (parent === undefined) {
      // FileIndex allows a path whose parent is not indexed; stored layers and stacks never have one.
      throw new Error(`cannot store the index: ${p} has no indexed parent directory`);
    }
    const last = lastChild[parent] as number;
    if (last < 0) firstChild[parent] = i;
    else nextSibling[last] = i;
    lastChild[parent] = i;
  }
  pathStart[n] = pathChars;
  linkStart[n] = linkChars;
  const header: Header = {
    version: COLUMNAR_INDEX_VERSION,
    endian: endianness(),
    kind: extras.kind,
    key: extras.key,
    count: n,
    pathChars,
    linkChars,
    encoding: "latin1",
    whiteouts: extras.whiteouts,
    opaqueDirs: extras.opaqueDirs,
    implicitDirs: extras.implicitDirs,
    fixups: extras.fixups.map(([p, e]) => [p, entryToJson(e)]),
  };
  const pathText = paths.map((p) => p + "\0").join("");
  const linkText = links.map((l) => l + "\0").join("");
  const wide = /[\u0100-\uffff]/;
  header.encoding = wide.test(pathText) || wide.test(linkText) ? "utf16le" : "latin1";
  const headerBytes = Buffer.from(JSON.stringify(header), "utf8");
  const pathBytes = Buffer.from(pathText, header.encoding);
  const linkBytes = Buffer.from(linkText, header.encoding);
  const sections: ArrayBufferView[] = [
    pathBytes,
    linkBytes,
    pathStart,
    linkStart,
    firstChild,
    nextSibling,
    type,
    mode,
    uid,
    gid,
    nlink,
    size,
    ino,
    mtime,
    ctime,
  ];
  let total = align8(PREFIX + headerBytes.length);
  for (const s of sections) total = align8(total + s.byteLength);
  const out = Buffer.alloc(total);
  MAGIC.copy(out, 0);
  out.writeUInt32LE(headerBytes.length, 40);
  headerBytes.copy(out, PREFIX);
  let at = align8(PREFIX + headerBytes.length);
  for (const s of sections) {
    out.set(new Uint8Array(s.buffer, s.byteOffset, s.byteLength), at);
    at = align8(at + s.byteLength);
  }
  createHash("sha256").update(out.subarray(40)).digest().copy(out, 8);
  return out;
}

/**
 * A loaded columnar index: typed-array views over the file's bytes. Implements {@link FileIndexBase}
 * so a {@link FileIndex} can sit on it without copying ({@link FileIndex.fromBase}).
 */
export class ColumnarIndex implements FileIndexBase {
  readonly kind: "layer" | "stack";
  readonly key: string;
  readonly count: number;
  readonly whiteouts: readonly string[];
  readonly opaqueDirs: readonly string[];
  readonly implicitDirs: readonly string[];
  /** Stack indexes: implied directories to restore (see {@link ColumnarExtras.fixups}); `dev` is 0. */
  readonly fixups: readonly [string, IndexEntry][];
  /** Size of the stored file in bytes. */
  readonly bytes: number;
  /** Device number given to every entry (the mount's); 0 until {@link withDev}. */
  readonly dev: number;
  readonly #paths: string;
  readonly #links: string;
  readonly #pathStart: Uint32Array;
  readonly #linkStart: Int32Array;
  readonly #firstChild: Int32Array;
  readonly #nextSibling: Int32Array;
  readonly #type: Uint8Array;
  readonly #mode: Uint32Array;
  readonly #uid: Uint32Array;
  readonly #gid: Uint32Array;
  readonly #nlink: Uint32Array;
  readonly #size: Float64Array;
  readonly #ino: Float64Array;
  readonly #mtime: BigInt64Array;
  readonly #ctime: BigInt64Array;

  private constructor(src: ColumnarIndex | { data: Buffer; header: Header; at: number }, dev: number) {
    this.dev = dev;
    if (src instanceof ColumnarIndex) {
      this.kind = src.kind;
      this.key = src.key;
      this.count = src.count;
      this.whiteouts = src.whiteouts;
      this.opaqueDirs = src.opaqueDirs;
      this.implicitDirs = src.implicitDirs;
      this.fixups = src.fixups;
      this.bytes = src.bytes;
      this.#paths = src.#paths;
      this.#links = src.#links;
      this.#pathStart = src.#pathStart;
      this.#linkStart = src.#linkStart;
      this.#firstChild = src.#firstChild;
      this.#nextSibling = src.#nextSibling;
      this.#type = src.#type;
      this.#mode = src.#mode;
      this.#uid = src.#uid;
      this.#gid = src.#gid;
      this.#nlink = src.#nlink;
      this.#size = src.#size;
      this.#ino = src.#ino;
      this.#mtime = src.#mtime;
      this.#ctime = src.#ctime;
      return;
    }
    const { data, header: h } = src;
    let at = src.at;
    const n = h.count;
    const ab = data.buffer;
    const base = data.byteOffset;
    const take = <T>(bytes: number, make: (off: number) => T): T => {
      if (at + bytes > data.byteLength) throw new Error("the stored index is truncated");
      const v = make(at);
      at = align8(at + bytes);
      return v;
    };
    this.kind = h.kind;
    this.key = h.key;
    this.count = n;
    this.whiteouts = h.whiteouts;
    this.opaqueDirs = h.opaqueDirs;
    this.implicitDirs = h.implicitDirs;
    this.fixups = h.fixups.map(([p, e]) => [p, entryFromJson(e)]);
    this.bytes = data.byteLength;
    const w = h.encoding === "latin1" ? 1 : 2;
    this.#paths = take(h.pathChars * w, (o) => data.toString(h.encoding, o, o + h.pathChars * w));
    this.#links = take(h.linkChars * w, (o) => data.toString(h.encoding, o, o + h.linkChars * w));
    this.#pathStart = take(4 * (n + 1), (o) => new Uint32Array(ab, base + o, n + 1));
    this.#linkStart = take(4 * (n + 1), (o) => new Int32Array(ab, base + o, n + 1));
    this.#firstChild = take(4 * (n + 1), (o) => new Int32Array(ab, base + o, n + 1));
    this.#nextSibling = take(4 * n, (o) => new Int32Array(ab, base + o, n));
    this.#type = take(n, (o) => new Uint8Array(ab, base + o, n));
    this.#mode = take(4 * n, (o) => new Uint32Array(ab, base + o, n));
    this.#uid = take(4 * n, (o) => new Uint32Array(ab, base + o, n));
    this.#gid = take(4 * n, (o) => new Uint32Array(ab, base + o, n));
    this.#nlink = take(4 * n, (o) => new Uint32Array(ab, base + o, n));
    this.#size = take(8 * n, (o) => new Float64Array(ab, base + o, n));
    this.#ino = take(8 * n, (o) => new Float64Array(ab, base + o, n));
    this.#mtime = take(8 * n, (o) => new BigInt64Array(ab, base + o, n));
    this.#ctime = take(8 * n, (o) => new BigInt64Array(ab, base + o, n));
    if (this.#paths.length !== h.pathChars || this.#pathStart[n] !== h.pathChars) {
      throw new Error("the stored index has inconsistent path offsets");
    }
    // Sorted paths put a parent before its children and siblings in increasing order. A stored index that
    // breaks this (damaged, or forged: skeleton records come from a shared cache, and the digest above is
    // only the writer's own) could send childNamesAt round a loop without end.
    for (let i = 0; i <= n; i++) {
      const c = this.#firstChild[i] as number;
      if (c !== -1 && (c < 0 || c >= n || (i < n && c <= i))) throw new Error("the stored index has bad child links");
    }
    for (let i = 0; i < n; i++) {
      const s = this.#nextSibling[i] as number;
      if (s !== -1 && (s <= i || s >= n)) throw new Error("the stored index has bad sibling links");
    }
  }

  /**
   * Verifies (sha256 over the whole file) and opens stored index bytes; `kind` and `key` must match.
   * Throws a plain Error when the bytes are not an intact index of this version (the caller rebuilds).
   */
  static decode(stored: Buffer, kind: "layer" | "stack", key: string): ColumnarIndex {
    if (stored.length < PREFIX || !stored.subarray(0, 8).equals(MAGIC)) {
      throw new Error("the stored index is not a kiln columnar index (an older format?)");
    }
    const digest = createHash("sha256").update(stored.subarray(40)).digest();
    if (!digest.equals(stored.subarray(8, 40))) throw new Error("the stored index does not match its digest");
    // Typed-array views need 8-byte alignment within their ArrayBuffer (small reads come from a pool).
    const data = stored.byteOffset % 8 === 0 ? stored : Buffer.from(stored);
    const len = data.readUInt32LE(40);
    if (PREFIX + len > data.length) throw new Error("the stored index is truncated");
    const header = JSON.parse(data.toString("utf8", PREFIX, PREFIX + len)) as Header;
    if (
      header.version !== COLUMNAR_INDEX_VERSION ||
      header.endian !== endianness() ||
      (header.encoding !== "latin1" && header.encoding !== "utf16le")
    ) {
      throw new Error(`the stored index is not a version ${COLUMNAR_INDEX_VERSION} index for this machine`);
    }
    if (header.kind !== kind || header.key !== key)
      throw new Error(`the stored index is not the ${kind} index of ${key}`);
    return new ColumnarIndex({ data, header, at: align8(PREFIX + len) }, 0);
  }

  /** The same index whose entries carry device number `dev` (shares the columns). */
  withDev(dev: number): ColumnarIndex {
    return new ColumnarIndex(this, dev);
  }

  pathAt(i: number): string {
    return this.#paths.slice(this.#pathStart[i] as number, (this.#pathStart[i + 1] as number) - 1);
  }

  find(p: string): number {
    let lo = 0;
    let hi = this.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const q = this.pathAt(mid);
      if (q === p) return mid;
      if (q < p) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  entryAt(i: number): IndexEntry {
    const e: IndexEntry = {
      type: TYPES[this.#type[i] as number] as TarEntryType,
      mode: this.#mode[i] as number,
      uid: this.#uid[i] as number,
      gid: this.#gid[i] as number,
      size: this.#size[i] as number,
      mtimeNs: this.#mtime[i] as bigint,
      ctimeNs: this.#ctime[i] as bigint,
      ino: this.#ino[i] as number,
      dev: this.dev,
      nlink: this.#nlink[i] as number,
    };
    const l = this.#linkStart[i] as number;
    if (l < 0) return e;
    return { ...e, linkTarget: this.#links.slice(l, this.#links.indexOf("\0", l)) };
  }

  childNamesAt(i: number): string[] {
    const out: string[] = [];
    const skip = i === this.count ? 1 : this.pathAt(i).length + 1;
    for (let c = this.#firstChild[i] as number; c >= 0; c = this.#nextSibling[c] as number) {
      out.push(this.#paths.slice((this.#pathStart[c] as number) + skip, (this.#pathStart[c + 1] as number) - 1));
    }
    return out;
  }
}
