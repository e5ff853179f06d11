/**
 * Reads a docker-archive tarball (what `docker save` and kiln's `--tar-path` write) into a comparable model:
 * the final file tree (every layer applied in order with OCI whiteouts) and the image config. The tar reader
 * here is the test's own (ustar, pax, GNU long names), independent of kiln's codec in src/image, so a bug
 * there cannot hide itself.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { gunzipSync } from "node:zlib";

/** One path of the final file tree. */
export interface TreeEntry {
  type: "file" | "dir" | "symlink" | "char" | "block" | "fifo";
  /** Permission bits including setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** sha256 of the content (files only). */
  sha256?: string;
  /** Symlink target. */
  link?: string;
  /** `major,minor` for devices. */
  dev?: string;
  /** `security.capability` xattr as hex, when present. */
  capability?: string;
  /** Every other xattr as `name=hex`, sorted and joined by `,`, when there are any. */
  xattrs?: string;
  /** Identity of the file's inode: hardlinked paths share it. */
  inode?: number;
}

/** A built image as read from a docker-archive. */
export interface ImageModel {
  tree: Map<string, TreeEntry>;
  /** The parsed config JSON (`architecture`, `os`, `config`, …). */
  config: Record<string, unknown>;
  layerCount: number;
}

interface RawEntry {
  name: string;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Buffer>;
  data: Buffer;
}

function cstr(buf: Buffer, off: number, len: number): string {
  const slice = buf.subarray(off, off + len);
  const nul = slice.indexOf(0);
  return slice.subarray(0, nul === -1 ? len : nul).toString("utf8");
}

function num(buf: Buffer, off: number, len: number): number {
  const first = buf[off] ?? 0;
  if (first & 0x80) {
    // base-256 (GNU): big-endian, first byte's top bit is the marker.
    let v = first & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + (buf[off + i] ?? 0);
    return v;
  }
  const s = cstr(buf, off, len).trim();
  return s === "" ? 0 : parseInt(s, 8);
}

function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos);
    if (sp === -1) break;
    const len = parseInt(data.subarray(pos, sp).toString("ascii"), 10);
    if (!Number.isFinite(len) || len <= 0) break;
    const record = data.subarray(sp + 1, pos + len - 1); // without the trailing newline
    const eq = record.indexOf(0x3d);
    if (eq !== -1) out.set(record.subarray(0, eq).toString("utf8"), Buffer.from(record.subarray(eq + 1)));
    pos += len;
  }
  return out;
}

/** Parses an uncompressed tar held in memory into its entries (pax/GNU extension headers folded in). */
export function parseTar(buf: Buffer): RawEntry[] {
  const entries: RawEntry[] = [];
  let pos = 0;
  let pax = new Map<string, Buffer>();
  let longName: string | undefined;
  let longLink: string | undefined;
  while (pos + 512 <= buf.length) {
    const h = buf.subarray(pos, pos + 512);
    if (h.every((b) => b === 0)) break;
    const size = num(h, 124, 12);
    const typeflag = String.fromCharCode(h[156] ?? 0x30).replace("\0", "0");
    const dataStart = pos + 512;
    const data = buf.subarray(dataStart, dataStart + size);
    pos = dataStart + Math.ceil(size / 512) * 512;
    if (typeflag === "x") {
      pax = parsePax(data);
      continue;
    }
    if (typeflag === "g") continue;
    if (typeflag === "L") {
      longName = cstr(data, 0, data.length);
      continue;
    }
    if (typeflag === "K") {
      longLink = cstr(data, 0, data.length);
      continue;
    }
    const magic = cstr(h, 257, 6);
    const prefix = magic.startsWith("ustar") ? cstr(h, 345, 155) : "";
    let name = cstr(h, 0, 100);
    if (prefix !== "") name = `${prefix}/${name}`;
    let linkname = cstr(h, 157, 100);
    let uid = num(h, 108, 8);
    let gid = num(h, 116, 8);
    let realSize = size;
    if (longName !== undefined) name = longName;
    if (longLink !== undefined) linkname = longLink;
    const xattrs = new Map<string, Buffer>();
    for (const [k, v] of pax) {
      if (k === "path") name = v.toString("utf8");
      else if (k === "linkpath") linkname = v.toString("utf8");
      else if (k === "uid") uid = parseInt(v.toString("ascii"), 10);
      else if (k === "gid") gid = parseInt(v.toString("ascii"), 10);
      else if (k === "size") realSize = parseInt(v.toString("ascii"), 10);
      else if (k.startsWith("SCHILY.xattr.")) xattrs.set(k.slice("SCHILY.xattr.".length), v);
    }
    pax = new Map();
    longName = undefined;
    longLink = undefined;
    entries.push({
      name,
      typeflag,
      mode: num(h, 100, 8),
      uid,
      gid,
      size: realSize,
      linkname,
      devmajor: num(h, 329, 8),
      devminor: num(h, 337, 8),
      xattrs,
      data,
    });
  }
  return entries;
}

/** `./a/b/` → `/a/b`; the root is `/`. */
export function cleanPath(p: string): string {
  const parts = p.split("/").filter((s) => s !== "" && s !== ".");
  return "/" + parts.join("/");
}

function maybeGunzip(buf: Buffer): Buffer {
  if (buf[0] === 0x1f && buf[1] === 0x8b) return gunzipSync(buf);
  if (buf[0] === 0x28 && buf[1] === 0xb5 && buf[2] === 0x2f && buf[3] === 0xfd) {
    throw new Error("zstd layers are not supported by the differential reader");
  }
  return buf;
}

function removeTree(tree: Map<string, TreeEntry>, p: string, keepSelf: boolean): void {
  const prefix = p === "/" ? "/" : p + "/";
  for (const k of [...tree.keys()]) {
    if (k.startsWith(prefix) || (!keepSelf && k === p)) tree.delete(k);
  }
}

/** Applies one layer's entries to `tree` with OCI whiteout semantics. */
function applyLayer(tree: Map<string, TreeEntry>, entries: RawEntry[], nextInode: () => number): void {
  // Whiteouts and opaque markers apply to the lower layers, before this layer's own entries.
  for (const e of entries) {
    const p = cleanPath(e.name);
    const base = p.slice(p.lastIndexOf("/") + 1);
    const dir = p.slice(0, p.lastIndexOf("/")) || "/";
    if (base === ".wh..wh..opq") removeTree(tree, dir, true);
    else if (base.startsWith(".wh.")) removeTree(tree, (dir === "/" ? "" : dir) + "/" + base.slice(4), false);
  }
  for (const e of entries) {
    const p = cleanPath(e.name);
    const base = p.slice(p.lastIndexOf("/") + 1);
    if (base.startsWith(".wh.")) continue;
    const cap = e.xattrs.get("security.capability");
    const others = [...e.xattrs]
      .filter(([k]) => k !== "security.capability")
      .map(([k, v]) => `${k}=${v.toString("hex")}`)
      .sort();
    const common = {
      mode: e.mode & 0o7777,
      uid: e.uid,
      gid: e.gid,
      ...(cap !== undefined ? { capability: cap.toString("hex") } : {}),
      ...(others.length > 0 ? { xattrs: others.join(",") } : {}),
    };
    const existing = tree.get(p);
    // A non-directory replaces whatever was there (including a directory and its contents).
    if (existing !== undefined && !(existing.type === "dir" && e.typeflag === "5")) removeTree(tree, p, false);
    switch (e.typeflag) {
      case "0":
      case "7":
        tree.set(p, {
          type: "file",
          ...common,
          size: e.size,
          sha256: createHash("sha256").update(e.data).digest("hex"),
          inode: nextInode(),
        });
        break;
      case "1": {
        const target = tree.get(cleanPath(e.linkname));
        if (target === undefined) throw new Error(`hardlink ${p} -> ${e.linkname}: target not found`);
        tree.set(p, target); // the same object: one inode
        break;
      }
      case "2":
        tree.set(p, { type: "symlink", ...common, size: 0, link: e.linkname });
        break;
      case "3":
      case "4":
        tree.set(p, {
          type: e.typeflag === "3" ? "char" : "block",
          ...common,
          size: 0,
          dev: `${e.devmajor},${e.devminor}`,
        });
        break;
      case "5":
        tree.set(p, { type: "dir", ...common, size: 0 });
        break;
      case "6":
        tree.set(p, { type: "fifo", ...common, size: 0 });
        break;
      default:
        throw new Error(`unsupported tar entry type ${JSON.stringify(e.typeflag)} for ${p}`);
    }
  }
}

/** Reads a docker-archive (first image of manifest.json) into an {@link ImageModel}. */
export async function readDockerArchive(file: string): Promise<ImageModel> {
  const outer = new Map<string, Buffer>();
  for (const e of parseTar(await readFile(file))) outer.set(cleanPath(e.name), e.data);
  const manifestRaw = outer.get("/manifest.json");
  if (manifestRaw === undefined) throw new Error(`${file}: no manifest.json (not a docker-archive)`);
  const manifest = JSON.parse(manifestRaw.toString("utf8")) as { Config: string; Layers: string[] }[];
  const first = manifest[0];
  if (first === undefined) throw new Error(`${file}: empty manifest.json`);
  const configRaw = outer.get(cleanPath(first.Config));
  if (configRaw === undefined) throw new Error(`${file}: config ${first.Config} missing`);
  const tree = new Map<string, TreeEntry>();
  let inode = 0;
  for (const layer of first.Layers) {
    const data = outer.get(cleanPath(layer));
    if (data === undefined) throw new Error(`${file}: layer ${layer} missing`);
    applyLayer(tree, parseTar(maybeGunzip(data)), () => ++inode);
  }
  return {
    tree,
    config: JSON.parse(configRaw.toString("utf8")) as Record<string, unknown>,
    layerCount: first.Layers.length,
  };
}
