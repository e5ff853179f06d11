import {
  chmodSync,
  closeSync,
  open as openCb,
  symlink as symlinkCb,
  constants,
  fchmodSync,
  fchownSync,
  ftruncateSync,
  futimesSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  symlinkSync,
  utimesSync,
  writeSync,
} from "node:fs";
import type { Stats } from "node:fs";
import { link, readdir, rm } from "node:fs/promises";
import * as path from "node:path";
import type { Readable } from "node:stream";
import { KilnError } from "../common/errors.js";
import { readTar } from "../image/tar/index.js";
import type { TarEntry, TarHeader } from "../image/tar/index.js";
import { cleanContainerPath, containerBasename, containerDirname, containerJoin, escapesRoot } from "./clean-path.js";
import { indexEntryFromStatSync } from "./file-index.js";
import type { FileIndex } from "./file-index.js";
import type { IgnoreList } from "./ignore-list.js";
import { resolveInRoot, toContainerPath } from "../common/resolve-in-root.js";
import { CreatePacer } from "./create-pacer.js";
import { SpecialNodes, xattrRequest } from "./special-node.js";
import { XattrQueue } from "./xattr.js";

/** Options of {@link applyLayer}. */
export interface ApplyOptions {
  /** Receives the lstat metadata of every path written, and loses every path deleted. */
  index?: FileIndex;
  /** Paths never written nor deleted. */
  ignore?: IgnoreList;
  signal?: AbortSignal;
  /**
   * Build a standalone overlayfs lower directory holding this one layer (the layer store): nothing is
   * deleted; a whiteout becomes an overlay whiteout (a 0/0 character device, needs root and `mknod`), an
   * opaque marker (or a whiteout of a directory the layer refills) becomes `trusted.overlay.opaque=y`, and
   * `trusted.overlay.*` xattrs carried by the tar are never restored. The root should start empty.
   */
  overlayWhiteouts?: boolean;
  /**
   * Milliseconds an inline file creation may take on average before creations go to the thread pool
   * ({@link CreatePacer}; default 0.06); 0 sends (nearly) every creation to the pool.
   */
  slowCreateMs?: number;
  /**
   * Skeleton mode: only directories and symlinks are created (with their metadata and xattrs, as a full
   * extraction creates them). Every other entry (file, hardlink, device, FIFO) still replaces what lies at
   * its path but is not created; its container path is added to this set instead. A skeleton root answers
   * path resolution like the full one, with the same directory owners, modes, xattrs and tar times (a
   * directory whose files a later layer changed has the time of the change in either, not the same one).
   * The set is conservative: a path stays in it when a later layer deletes or replaces the entry.
   */
  skeletonOf?: Set<string>;
  /** Receives every entry's header as read, before anything is applied (whiteouts and ignored paths too). */
  onEntry?: (header: TarHeader) => void;
}

/** Container paths recorded by {@link applyLayer} in `overlayWhiteouts` mode. */
export interface OverlayLayerInfo {
  /** Paths now holding an overlay whiteout (hidden in the layers below). */
  whiteouts: string[];
  /** Directories marked opaque (their content in the layers below is hidden). */
  opaqueDirs: string[];
  /** Directories the layer did not contain but had to create as parents of its entries. */
  implicitDirs: string[];
}

/** What {@link applyLayer} did. `skipped` lists entries not (fully) applied, never failures. */
export interface ApplyResult {
  entries: number;
  whiteouts: number;
  /** Files and symlinks created through the thread pool rather than inline ({@link CreatePacer}). */
  pooledCreations: number;
  skipped: { path: string; reason: string }[];
  /** Set in `overlayWhiteouts` mode. */
  overlay?: OverlayLayerInfo;
}

const WHITEOUT = ".wh.";
const FILE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const OPAQUE = ".wh..wh..opq";

/** Per-layer bookkeeping; local to one applyLayer call. */
interface LayerState {
  root: string;
  opts: ApplyOptions;
  result: ApplyResult;
  /** Container paths written by this layer, and all their ancestors. */
  written: Set<string>;
  ancestors: Set<string>;
  /** Dirs whose lower-layer content must be removed at the end (opaque markers, whiteouts of dirs this layer also fills). */
  opaque: Set<string>;
  /** Dir host path → [atime, mtime] restored after all children are written. */
  dirTimes: Map<string, { atime: number; mtime: number }>;
  /** Xattrs waiting for setfattr (applied in batches, after the in-flight creations). */
  xattrs: XattrQueue;
  /** Container paths whose index entry must be refreshed (or dropped) at the end. */
  touched: Set<string>;
  /**
   * Unresolved container dir → host dir verified to be a real directory during this layer. Cleared on
   * anything that could change resolution (a symlink created, anything removed).
   */
  dirCache: Map<string, string>;
  /**
   * Host dirs this call created (empty when made): an entry in one of them that this layer has neither
   * written nor created as a parent cannot exist, so it needs no lstat (a base layer's entries need none).
   */
  freshDirs: Set<string>;
  nodes: SpecialNodes;
  pacer: CreatePacer;
  /** Host path → in-flight creation of a file or symlink (see {@link queueCreate}). */
  pending: Map<string, Promise<void>>;
  pendingBytes: number;
  /** First failure of an in-flight creation, rethrown by {@link drain}. */
  failure?: Error | undefined;
  /** overlayWhiteouts mode: whiteouts to create at the end, and dirs created only as parents. */
  ovWhiteouts: Set<string>;
  implicit: Set<string>;
}

/**
 * Regular files and symlinks are created inline or, when the disk is slow ({@link CreatePacer}),
 * through the thread pool with up to this many in flight while the main thread keeps parsing. Anything
 * that depends on an in-flight path waits for all of them.
 */
const MAX_IN_FLIGHT = 64;
/** Bytes of file bodies held in memory for in-flight creations. */
const MAX_IN_FLIGHT_BYTES = 64 * 1024 * 1024;
/** Files larger than this are written inline, streaming, instead of being buffered. */
const MAX_BUFFERED_FILE = 4 * 1024 * 1024;

/**
 * Applies one uncompressed OCI layer tar to the directory `root` with image-spec whiteout semantics, every
 * host path derived through {@link resolveInRoot}: entries that would leave the root are rejected with
 * `LAYER_UNSAFE` (nothing outside the root is ever written), ignored paths are skipped, ownership, modes,
 * times and xattrs are restored, and `opts.index` is updated with the result.
 */
export async function applyLayer(root: string, tar: Readable, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const st: LayerState = {
    root: path.resolve(root),
    opts,
    result: { entries: 0, whiteouts: 0, pooledCreations: 0, skipped: [] },
    written: new Set(),
    ancestors: new Set(),
    opaque: new Set(),
    dirTimes: new Map(),
    xattrs: new XattrQueue(() => drain(st)),
    touched: new Set(),
    dirCache: new Map(),
    freshDirs: new Set(),
    nodes: new SpecialNodes(),
    pacer: new CreatePacer(opts.slowCreateMs),
    pending: new Map(),
    pendingBytes: 0,
    ovWhiteouts: new Set(),
    implicit: new Set(),
  };
  try {
    for await (const entry of readTar(tar)) {
      opts.signal?.throwIfAborted();
      st.result.entries++;
      opts.onEntry?.(entry.header);
      await applyEntry(st, entry);
    }
    await finishLayer(st);
  } finally {
    // Never leave creations running behind the caller's back (errors are already being reported).
    await Promise.allSettled(st.pending.values());
  }
  return st.result;
}

/** Waits for every in-flight creation; throws the first failure among them. */
async function drain(st: LayerState): Promise<void> {
  if (st.pending.size > 0) await Promise.allSettled(st.pending.values());
  if (st.failure !== undefined) throw st.failure;
}

function creationError(name: string, root: string, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ENAMETOOLONG") return unsafe(name, "path too long for the host filesystem", e);
  return new KilnError("LAYER_APPLY", `cannot apply layer entry ${JSON.stringify(name)} to ${root}: ${String(e)}`, {
    cause: e,
  });
}

/**
 * Creates `host`: inline (`startSync` answers the new fd, if any) while creations are fast, else in the
 * thread pool (`start` calls back with the fd or error); `finish` runs on the main thread with the fd.
 * Pool creations are bounded by {@link MAX_IN_FLIGHT} and {@link MAX_IN_FLIGHT_BYTES}.
 */
async function queueCreate(
  st: LayerState,
  name: string,
  host: string,
  bytes: number,
  start: (cb: (err: Error | null, fd?: number) => void) => void,
  startSync: () => number | undefined,
  finish: (fd: number | undefined) => void,
): Promise<void> {
  if (st.failure !== undefined) throw st.failure;
  if (st.pacer.inline()) {
    const t0 = performance.now();
    let fd: number | undefined;
    try {
      fd = startSync();
    } catch (e) {
      throw creationError(name, st.root, e);
    } finally {
      st.pacer.record(performance.now() - t0);
    }
    try {
      finish(fd);
    } catch (e) {
      throw creationError(name, st.root, e);
    }
    return;
  }
  while (st.pending.size >= MAX_IN_FLIGHT || (st.pending.size > 0 && st.pendingBytes + bytes > MAX_IN_FLIGHT_BYTES)) {
    await Promise.race(st.pending.values());
  }
  if (st.failure !== undefined) throw st.failure;
  st.result.pooledCreations++;
  st.pendingBytes += bytes;
  const job = new Promise<void>((resolve) => {
    start((err, fd) => {
      try {
        if (err !== null) throw err;
        finish(fd);
      } catch (e) {
        st.failure ??= creationError(name, st.root, e);
      } finally {
        st.pending.delete(host);
        st.pendingBytes -= bytes;
        resolve();
      }
    });
  });
  st.pending.set(host, job);
}

function unsafe(name: string, why: string, cause?: unknown): KilnError {
  return new KilnError("LAYER_UNSAFE", `layer entry ${JSON.stringify(name)} rejected: ${why}`, { cause });
}

async function applyEntry(st: LayerState, entry: TarEntry): Promise<void> {
  const h = entry.header;
  const name = h.name;
  if (name.includes("\0")) throw unsafe(name, "name contains a NUL byte");
  if (escapesRoot(name)) throw unsafe(name, "its path climbs above the root with '..'");
  if (h.type === "hardlink" && (h.linkname.includes("\0") || escapesRoot(h.linkname))) {
    throw unsafe(name, `hardlink target ${JSON.stringify(h.linkname)} is outside the root`);
  }
  const p = cleanContainerPath(name);
  const base = containerBasename(p);
  const dir = containerDirname(p);
  try {
    if (base === OPAQUE) {
      st.result.whiteouts++;
      await opaqueMarker(st, dir);
      return;
    }
    if (base.startsWith(WHITEOUT)) {
      st.result.whiteouts++;
      const victim = base.slice(WHITEOUT.length);
      if (victim === "" || victim === "." || victim === ".." || victim.startsWith(WHITEOUT)) {
        throw unsafe(name, `whiteout names an invalid path ${JSON.stringify(victim)}`);
      }
      await whiteout(st, containerJoin(dir, victim));
      return;
    }
    if (p === "/") {
      // The `./` directory entry many tar writers emit is ignored without a warning, like containerd
      // does (BuildKit/docker build); anything else naming the root is reported.
      if (h.type !== "dir") {
        st.result.skipped.push({ path: "/", reason: "entry for the root directory itself is not applied" });
      }
      return;
    }
    await writeEntry(st, p, entry);
  } catch (e) {
    if (e instanceof KilnError) {
      if (e.code === "FS_LOOP") throw unsafe(name, e.message, e);
      throw e;
    }
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENAMETOOLONG") throw unsafe(name, "path too long for the host filesystem", e);
    throw new KilnError("LAYER_APPLY", `cannot apply layer entry ${JSON.stringify(name)} to ${st.root}: ${String(e)}`, {
      cause: e,
    });
  }
}

/** Host path of the entry `p`: parent resolved (following symlinks inside the root), final name kept. */
async function hostFor(st: LayerState, p: string): Promise<{ host: string; cpath: string; parentKnown: boolean }> {
  const dir = containerDirname(p);
  const cached = st.dirCache.get(dir);
  if (cached === undefined) await drain(st); // resolution must see in-flight files and symlinks
  const parentHost = cached ?? (await resolveInRoot(st.root, dir, { followFinal: true }));
  const host = path.join(parentHost, containerBasename(p));
  return { host, cpath: containerPathOf(st.root, host), parentKnown: cached !== undefined };
}

/**
 * The container path of `host`, a normalised path inside `root` (a resolved parent joined with a clean
 * name): the root prefix is cut off; anything else goes through toContainerPath's checks.
 */
function containerPathOf(root: string, host: string): string {
  if (root === "/" && host.startsWith("/")) return host;
  if (host.length > root.length && host.startsWith(root) && host.charCodeAt(root.length) === 0x2f) {
    return host.slice(root.length);
  }
  return toContainerPath(root, host);
}

/** Removes a host path (recursively, never following symlinks) and forgets cached resolutions. */
async function remove(st: LayerState, host: string): Promise<void> {
  await drain(st);
  st.dirCache.clear();
  await rm(host, { recursive: true, force: true });
}

function ignored(st: LayerState, p: string): boolean {
  return st.opts.ignore?.ignores(p) ?? false;
}

function markWritten(st: LayerState, cpath: string): void {
  st.written.add(cpath);
  st.touched.add(cpath);
  for (let d = containerDirname(cpath); ; d = containerDirname(d)) {
    if (st.ancestors.has(d)) break;
    st.ancestors.add(d);
    st.touched.add(d);
    if (d === "/") break;
  }
}

// Hot-path metadata calls are synchronous on purpose: each is a few microseconds, whereas a round trip
// through libuv's thread pool costs ~10x more, and extraction is a long sequence of them.
function lstatOrUndef(host: string): Stats | undefined {
  try {
    // Most entries of a layer are new paths: `throwIfNoEntry: false` answers ENOENT without building an
    // exception (~10 µs each, a second on a 100,000-file base).
    return lstatSync(host, { throwIfNoEntry: false });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw e;
  }
}

/** Creates the missing directories between the root and `hostDir` (0755 root:root); replaces non-dirs. */
async function ensureDir(st: LayerState, hostDir: string): Promise<void> {
  const rel = path.relative(st.root, hostDir);
  if (rel === "") return;
  let cur = st.root;
  for (const seg of rel.split(path.sep)) {
    cur = path.join(cur, seg);
    const s = lstatOrUndef(cur);
    if (s?.isDirectory()) continue;
    const cpath = toContainerPath(st.root, cur);
    if (ignored(st, cpath)) throw new KilnError("LAYER_APPLY", `cannot create ${cpath}: it is an ignored path`);
    if (s !== undefined) await remove(st, cur);
    mkdirSync(cur, { mode: 0o755 });
    st.freshDirs.add(cur);
    chmodSync(cur, 0o755);
    st.touched.add(cpath);
    if (st.opts.overlayWhiteouts) st.implicit.add(cpath);
  }
}

async function writeEntry(st: LayerState, p: string, entry: TarEntry): Promise<void> {
  const h = entry.header;
  if (ignored(st, p)) {
    st.result.skipped.push({ path: p, reason: "ignored path" });
    return;
  }
  const { host, cpath, parentKnown } = await hostFor(st, p);
  if (cpath === "/") {
    st.result.skipped.push({ path: p, reason: "entry resolves to the root directory itself" });
    return;
  }
  if (ignored(st, cpath)) {
    st.result.skipped.push({ path: cpath, reason: "ignored path" });
    return;
  }
  if (!parentKnown) {
    await ensureDir(st, path.dirname(host));
    st.dirCache.set(containerDirname(p), path.dirname(host));
  }
  if (st.pending.has(host)) await drain(st); // duplicate entry: the first must be complete
  // In a directory this call created, only what this layer wrote (or made as a parent of it) can exist.
  const fresh = st.freshDirs.has(path.dirname(host)) && !st.written.has(cpath) && !st.ancestors.has(cpath);
  const existing = fresh ? undefined : lstatOrUndef(host);

  // Skeleton mode: such an entry replaces what was there, and is recorded instead of created.
  const recordOnly = st.opts.skeletonOf !== undefined && h.type !== "dir" && h.type !== "symlink";

  // Hardlink target must be resolved before the existing entry is removed (it may be that entry).
  let linkTarget: string | undefined;
  if (h.type === "hardlink" && !recordOnly) {
    await drain(st);
    linkTarget = await resolveInRoot(st.root, cleanContainerPath(h.linkname), { followFinal: false });
    if (linkTarget === host) {
      st.result.skipped.push({ path: cpath, reason: "hardlink to itself" });
      return;
    }
    const t = lstatOrUndef(linkTarget);
    if (t === undefined) {
      throw unsafe(h.name, `hardlink target ${h.linkname} does not exist inside the root`);
    }
    if (t.isDirectory()) throw unsafe(h.name, `hardlink target ${h.linkname} is a directory`);
    if (ignored(st, toContainerPath(st.root, linkTarget))) {
      st.result.skipped.push({ path: cpath, reason: `hardlink to ignored path ${h.linkname} not created` });
      return;
    }
  }

  if (existing !== undefined && !(existing.isDirectory() && h.type === "dir")) {
    await remove(st, host);
    if (existing.isDirectory()) st.opts.index?.deleteTree(cpath);
  }
  st.xattrs.delete(host);
  st.dirTimes.delete(host);
  if (recordOnly) {
    // Nothing is created here: the index loses what was removed (a directory already did, above) and
    // needs no refresh at the end.
    if (existing !== undefined && !existing.isDirectory()) st.opts.index?.deleteTree(cpath);
    markWritten(st, cpath);
    st.touched.delete(cpath);
    st.opts.skeletonOf?.add(cpath);
    return;
  }
  markWritten(st, cpath);

  switch (h.type) {
    case "dir":
      if (existing === undefined || !existing.isDirectory()) {
        mkdirSync(host, { mode: 0o700 });
        st.freshDirs.add(host);
      }
      lchownSync(host, h.uid, h.gid);
      chmodSync(host, h.mode & 0o7777);
      st.dirTimes.set(host, { atime: h.atime ?? h.mtime, mtime: h.mtime });
      st.dirCache.set(p, host);
      break;
    case "file":
      if (h.size <= MAX_BUFFERED_FILE) {
        const data = await entry.content();
        const { uid, gid, mtime } = h;
        const mode = h.mode & 0o7777;
        const atime = h.atime ?? h.mtime;
        await queueCreate(
          st,
          h.name,
          host,
          data.length,
          (cb) => openCb(host, FILE_FLAGS, 0o600, (err, fd) => cb(err, fd)),
          () => openSync(host, FILE_FLAGS, 0o600),
          (fd) => {
            const f = fd as number;
            try {
              let off = 0;
              while (off < data.length) off += writeSync(f, data, off, data.length - off);
              fchownSync(f, uid, gid);
              fchmodSync(f, mode);
              futimesSync(f, atime, mtime);
            } finally {
              closeSync(f);
            }
          },
        );
      } else {
        const fd = openSync(host, FILE_FLAGS, 0o600);
        try {
          // Pieces at their offsets and the size set at the end: a sparse file's holes stay holes.
          for await (const { offset, data } of entry.pieces()) {
            let off = 0;
            while (off < data.length) off += writeSync(fd, data, off, data.length - off, offset + off);
          }
          ftruncateSync(fd, h.size);
          fchownSync(fd, h.uid, h.gid);
          fchmodSync(fd, h.mode & 0o7777);
          futimesSync(fd, h.atime ?? h.mtime, h.mtime);
        } finally {
          closeSync(fd);
        }
      }
      break;
    case "symlink": {
      // No dirCache invalidation: the link's path did not exist (or was removed, which clears the cache).
      const { uid, gid, mtime, linkname } = h;
      const atime = h.atime ?? h.mtime;
      await queueCreate(
        st,
        h.name,
        host,
        0,
        (cb) => symlinkCb(linkname, host, (err) => cb(err)),
        () => {
          symlinkSync(linkname, host);
          return undefined;
        },
        () => {
          lchownSync(host, uid, gid);
          lutimesSync(host, atime, mtime);
        },
      );
      break;
    }
    case "hardlink":
      await link(linkTarget as string, host);
      st.touched.add(toContainerPath(st.root, linkTarget as string));
      return; // metadata is the target's; no xattrs either
    case "char":
    case "block":
    case "fifo":
      if (!(await makeSpecial(st, host, cpath, h, h.type))) return;
      lchownSync(host, h.uid, h.gid);
      chmodSync(host, h.mode & 0o7777);
      utimesSync(host, h.atime ?? h.mtime, h.mtime);
      break;
  }
  if (h.xattrs.size > 0) {
    const reserved = st.opts.overlayWhiteouts ? OVERLAY_XATTRS : undefined;
    const { request, skipped } = xattrRequest(host, h, reserved);
    for (const s of skipped) st.result.skipped.push({ path: cpath, reason: s });
    if (request !== undefined) xattrFailures(st, await st.xattrs.add(request));
  }
}

/** Records xattrs setfattr could not apply as skipped entries. */
function xattrFailures(st: LayerState, failed: readonly { path: string; reason: string }[]): void {
  for (const s of failed) st.result.skipped.push({ path: toContainerPath(st.root, s.path), reason: s.reason });
}

const OVERLAY_XATTRS = { prefix: "trusted.overlay.", reason: "reserved for overlayfs" };

async function makeSpecial(
  st: LayerState,
  host: string,
  cpath: string,
  h: TarHeader,
  type: "char" | "block" | "fifo",
): Promise<boolean> {
  const failure = await st.nodes.create(host, { type, mode: h.mode, devmajor: h.devmajor, devminor: h.devminor });
  if (failure === undefined) return true;
  st.written.delete(cpath);
  st.result.skipped.push({ path: cpath, reason: failure });
  return false;
}

async function whiteout(st: LayerState, victim: string): Promise<void> {
  await drain(st);
  const { host, cpath } = await hostFor(st, victim);
  if (cpath === "/") throw unsafe(victim, "whiteout would delete the root");
  const ig = st.opts.ignore;
  if (ig?.ignores(cpath) || ig?.isAncestorOfIgnored(cpath)) {
    st.result.skipped.push({ path: cpath, reason: "whiteout of an ignored path (or an ancestor of one) not applied" });
    return;
  }
  if (st.written.has(cpath)) return; // same-layer entries are not hidden by the layer's own whiteouts
  if (st.ancestors.has(cpath)) {
    st.opaque.add(cpath);
    return;
  }
  if (st.opts.overlayWhiteouts) {
    st.ovWhiteouts.add(cpath);
    return;
  }
  await remove(st, host);
  st.opts.index?.deleteTree(cpath);
  st.touched.add(containerDirname(cpath));
}

async function opaqueMarker(st: LayerState, dir: string): Promise<void> {
  await drain(st);
  const host = await resolveInRoot(st.root, dir, { followFinal: true });
  const cpath = toContainerPath(st.root, host);
  if (ignored(st, cpath)) return;
  st.opaque.add(cpath);
}

/** Removes everything below the (host) dir `cpath` that this layer did not write, sparing ignored paths. */
async function clearLower(st: LayerState, cpath: string): Promise<void> {
  const host = cpath === "/" ? st.root : path.join(st.root, cpath);
  const s = lstatOrUndef(host);
  if (!s?.isDirectory()) return;
  for (const name of await readdir(host)) {
    const child = containerJoin(cpath, name);
    const ig = st.opts.ignore;
    if (ig?.ignores(child)) continue;
    if (st.written.has(child) || st.ancestors.has(child) || ig?.isAncestorOfIgnored(child)) {
      await clearLower(st, child);
      continue;
    }
    await remove(st, path.join(host, name));
    st.opts.index?.deleteTree(child);
    st.touched.add(cpath);
  }
}

async function finishLayer(st: LayerState): Promise<void> {
  await drain(st);
  if (st.opts.overlayWhiteouts) await finishOverlayLayer(st);
  else for (const d of [...st.opaque].sort()) await clearLower(st, d);
  xattrFailures(st, await st.xattrs.flush());
  // Deepest directories first so that fixing a child's time does not disturb its parent's.
  const dirs = [...st.dirTimes.entries()].sort((a, b) => b[0].length - a[0].length);
  for (const [host, t] of dirs) {
    if (lstatOrUndef(host)?.isDirectory()) utimesSync(host, t.atime, t.mtime);
  }
  const index = st.opts.index;
  if (index === undefined) return;
  for (const cpath of st.touched) {
    if (cpath === "/") continue;
    const host = path.join(st.root, cpath);
    let s;
    try {
      s = lstatSync(host, { bigint: true });
    } catch {
      index.deleteTree(cpath);
      continue;
    }
    const old = index.get(cpath);
    const e = indexEntryFromStatSync(host, s);
    if (e === undefined) index.deleteTree(cpath);
    else {
      if (old !== undefined && old.type === "dir" && e.type !== "dir") index.deleteTree(cpath);
      index.set(cpath, e);
    }
  }
}

/**
 * overlayWhiteouts mode: creates the whiteout nodes and queues the opaque xattrs (before directory times
 * are restored, since creating a node changes its parent's mtime). A whiteout of a path the layer later
 * wrote hides nothing when that path is a non-directory, and makes it opaque when it is a directory.
 */
async function finishOverlayLayer(st: LayerState): Promise<void> {
  const whiteouts: string[] = [];
  for (const w of [...st.ovWhiteouts].sort()) {
    const host = path.join(st.root, w);
    if (st.written.has(w) || st.ancestors.has(w)) {
      if (lstatOrUndef(host)?.isDirectory()) st.opaque.add(w);
      continue;
    }
    if (!realDirChain(st, path.dirname(host))) continue; // a later entry made a parent a non-directory
    await ensureDir(st, path.dirname(host));
    const failure = await st.nodes.whiteout(host);
    if (failure !== undefined) {
      throw new KilnError(
        "LAYER_APPLY",
        `cannot create the overlay whiteout for ${w} in ${st.root}: ${failure} (the layer store needs root)`,
      );
    }
    st.touched.add(containerDirname(w));
    whiteouts.push(w);
  }
  const opaqueDirs: string[] = [];
  for (const d of [...st.opaque].sort()) {
    const host = d === "/" ? st.root : path.join(st.root, d);
    if (!realDirChain(st, host)) continue; // replaced by a non-directory later in the layer
    await ensureDir(st, host);
    const req = st.xattrs.get(host) ?? { hostPath: host, attrs: new Map<string, Buffer>() };
    req.attrs.set("trusted.overlay.opaque", Buffer.from("y"));
    xattrFailures(st, await st.xattrs.add(req));
    st.touched.add(d);
    opaqueDirs.push(d);
  }
  const implicitDirs = [...st.implicit].filter((d) => !st.written.has(d)).sort();
  st.result.overlay = { whiteouts, opaqueDirs, implicitDirs };
}

/** True when every existing component from the root down to `hostDir` is a real directory (no symlinks). */
function realDirChain(st: LayerState, hostDir: string): boolean {
  const rel = path.relative(st.root, hostDir);
  if (rel === "") return true;
  let cur = st.root;
  for (const seg of rel.split(path.sep)) {
    cur = path.join(cur, seg);
    const s = lstatOrUndef(cur);
    if (s === undefined) return true; // the rest is created fresh
    if (!s.isDirectory()) return false;
  }
  return true;
}
