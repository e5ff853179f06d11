import {
  chmod,
  copyFile,
  link,
  lchown,
  lstat,
  lutimes,
  mkdir,
  readlink,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import type { Stats } from "node:fs";
import path from "node:path";
import { KilnError } from "../../common/errors.js";
import type { DirContext } from "../../context/index.js";
import {
  applyXattrs,
  cleanContainerPath,
  readCapabilities,
  resolveInRoot,
  toContainerPath,
  type IgnoreList,
  type KnownCapabilities,
} from "../../fs/index.js";
import { extractArchive } from "./add-archive.js";
import type { MatchedSource } from "./copy-sources.js";

/** Ownership and mode options of one COPY/ADD. */
export interface CopyAttrs {
  /** `--chown` owner; without it entries are 0:0, or keep their source owner when `preserveOwners`. */
  owner?: { uid: number; gid: number };
  /** Keep source uid/gid (COPY --from a stage or image without `--chown`). */
  preserveOwners?: boolean;
  /**
   * Keep the source files' `security.capability` (COPY --from, as BuildKit's copy does; a build-context
   * file's is not kept, as in docker build).
   */
  keepCapabilities?: boolean;
  /** `--chmod` as a function of the source's mode and whether the entry is a directory. */
  chmod?: (mode: number, isDir: boolean) => number;
}

/** One thing a COPY/ADD writes under its destination. */
export type CopyItem =
  /** A file, directory or (followed) symlink of the build context or a `--from` root. */
  | { kind: "match"; match: MatchedSource; from: DirContext }
  /** Bytes with a name: a heredoc (0644) or a downloaded URL (0600). */
  | { kind: "content"; name: string; data: Buffer | { file: string }; mode: number; mtime: Date }
  /** A local or downloaded tar archive (any supported compression) extracted into the destination. */
  | { kind: "archive"; file: string; label: string };

/** What a copy wrote (container paths for the snapshot, see Copier.result) and what it knows of it. */
export interface CopyResult {
  written: string[];
  /**
   * With `keepCapabilities`: the regular files the copy created from a source file (container paths)
   * and, among them, those it gave a `security.capability` (the source's). The snapshot need not read
   * the attribute of these files again.
   */
  capabilities?: KnownCapabilities;
}

/** What a root laid out on demand needs to hear of a copy (see LazySkeleton). */
export interface RootHooks {
  /** Called by path resolution for each component before it is looked at. */
  visit(containerPath: string): void;
  /** Called before the copy removes what lies at a path. */
  removed(containerPath: string): void;
}

/** Files copied at the same time within one directory tree. */
const COPY_CONCURRENCY = 16;

interface Owner {
  uid: number;
  gid: number;
}

/**
 * Copies COPY/ADD items into a root with BuildKit's rules: a directory source copies its contents,
 * several items or a trailing "/" make the destination a directory, an existing directory
 * destination receives a file inside it, the destination resolves through symlinks inside the root,
 * symlinks inside copied directories stay links, hardlinked files stay hardlinked, sockets become
 * empty files and other special files are skipped, mtimes are kept. Owners are 0:0 unless
 * `--chown` (or kept from a `--from` root); implicitly created parents get the owner and `--chmod`
 * mode (0755 otherwise). An existing top-level destination keeps its own metadata; nested existing
 * directories take the source's. Every host path goes through {@link resolveInRoot}. Returns the
 * container paths written (for the snapshot; no walk needed).
 */
export async function copyIntoRoot(
  root: string,
  items: readonly CopyItem[],
  destRaw: string,
  workdir: string,
  attrs: CopyAttrs,
  opts: {
    parents?: boolean;
    signal?: AbortSignal;
    /**
     * In place: paths never to write (kiln's state dir, mount points, /proc …). Entries that land
     * there are skipped and reported through `onIgnored` (topmost skipped path only).
     */
    ignore?: IgnoreList;
    onIgnored?: (containerPath: string) => void;
    /** Archive entries ADD could not (fully) extract here: devices without root, xattrs kiln does not restore. */
    onSkipped?: (containerPath: string, reason: string) => void;
    /** A root laid out on demand (a skeleton from a record): told of every path resolved or removed. */
    rootHooks?: RootHooks;
  } = {},
): Promise<CopyResult> {
  const destIsDirSyntax =
    destRaw === "" || destRaw.endsWith("/") || destRaw.endsWith("/.") || destRaw === "." || destRaw === "..";
  const lexical = cleanContainerPath(destRaw.startsWith("/") ? destRaw : `${workdir || "/"}/${destRaw}`);
  const destHost = await resolveWith(root, lexical, true, opts.rootHooks);
  const dest = toContainerPath(root, destHost);
  const destStat = await stat(destHost).catch(() => undefined);
  const intoDir = destIsDirSyntax || items.length > 1 || opts.parents === true || destStat?.isDirectory() === true;
  if (items.length > 1 && destStat && !destStat.isDirectory()) {
    throw new KilnError(
      "COPY_DEST_NOT_DIR",
      `when using COPY with more than one source file, the destination must be a directory and end with a / (${destRaw} is a file)`,
    );
  }
  const c = new Copier(root, attrs, opts.signal, opts.ignore, opts.onIgnored, opts.rootHooks);
  for (const item of items) {
    if (item.kind === "archive") {
      if (c.skipIgnored(dest)) continue;
      await c.ensureDir(dest, undefined, true);
      const r = await extractArchive(root, dest, item.file, item.label, c.archiveOwner.bind(c), opts.signal);
      for (const p of r.written) c.written.add(p);
      for (const s of r.skipped) opts.onSkipped?.(s.path, s.reason);
      continue;
    }
    if (item.kind === "content") {
      const target = intoDir ? join(dest, item.name) : dest;
      await c.writeContent(target, item);
      continue;
    }
    const m = item.match;
    if (m.stat.isDirectory()) {
      const top = m.keep !== "" ? join(dest, m.keep) : dest;
      await c.copyTree(item.from, m, top);
    } else {
      const base = m.rel === "" ? "" : path.posix.basename(m.rel);
      const target = m.keep !== "" ? join(dest, m.keep) : intoDir ? join(dest, base) : dest;
      await c.copyEntry(m.abs, m.stat, target, false);
    }
  }
  const done = await c.finish();
  for (const s of done.failed) opts.onSkipped?.(s.path, s.reason);
  return { written: c.result(), ...(done.capabilities ? { capabilities: done.capabilities } : {}) };
}

/** resolveInRoot, telling `hooks` (a root laid out on demand) of each component it looks at. */
function resolveWith(
  root: string,
  target: string,
  followFinal: boolean,
  hooks: RootHooks | undefined,
): Promise<string> {
  return resolveInRoot(root, target, { followFinal, ...(hooks ? { visit: hooks.visit } : {}) });
}

function join(dir: string, rel: string): string {
  return cleanContainerPath(`${dir}/${rel}`);
}

/** State of one copy: what was written, directory times to restore, inodes seen (hardlinks). */
class Copier {
  readonly written = new Set<string>();
  private readonly touchedDirs = new Set<string>();
  private readonly dirTimes: { host: string; atime: Date; mtime: Date }[] = [];
  /** dev:ino of multiply-linked source files → host path of their first copy (once written). */
  private readonly inodes = new Map<string, Promise<string>>();
  /** With `keepCapabilities`: host path of each regular file copied → its source (read once, at the end). */
  private readonly capSources = new Map<string, string>();
  /** Container dirs known to exist (skips re-checking parents; resolution stays with resolveInRoot). */
  private readonly knownDirs = new Set<string>(["/"]);

  private readonly ignoredTops = new Set<string>();

  constructor(
    private readonly root: string,
    private readonly attrs: CopyAttrs,
    private readonly signal: AbortSignal | undefined,
    private readonly ignore?: IgnoreList,
    private readonly onIgnored?: (containerPath: string) => void,
    private readonly hooks?: RootHooks,
  ) {}

  /** resolveInRoot in this copy's root (through the root's hooks, when it has them). */
  private resolve(target: string, followFinal: boolean): Promise<string> {
    return resolveWith(this.root, target, followFinal, this.hooks);
  }

  /** True (and reported once per topmost path) when `target` is on the ignore list: it is not written. */
  skipIgnored(target: string): boolean {
    if (!this.ignore?.ignores(target)) return false;
    if (!this.ignoredTops.has(target) && !hasAncestorIn(target, this.ignoredTops)) {
      this.ignoredTops.add(target);
      this.onIgnored?.(target);
    }
    return true;
  }

  /** Owner of an entry whose source owner is `src`. */
  ownerFor(src: Owner): Owner {
    if (this.attrs.owner) return this.attrs.owner;
    return this.attrs.preserveOwners ? { uid: src.uid, gid: src.gid } : { uid: 0, gid: 0 };
  }

  /** Owner of an extracted archive entry: `--chown`, else the archive's own uid/gid (like Docker). */
  archiveOwner(src: Owner): Owner {
    return this.attrs.owner ?? { uid: src.uid, gid: src.gid };
  }

  private mode(st: Stats): number {
    const m = st.mode & 0o7777;
    return this.attrs.chmod ? this.attrs.chmod(m, st.isDirectory()) : m;
  }

  /** Copies a directory's contents to `top` (created with the source dir's metadata when missing). */
  async copyTree(from: DirContext, m: MatchedSource, top: string): Promise<void> {
    await this.ensureDir(top, m.stat, true);
    // Directories are made in walk order (parents first); files and links are copied concurrently.
    const pending = new Set<Promise<void>>();
    let failure: { e: unknown } | undefined;
    for await (const child of from.walk(m.rel)) {
      this.signal?.throwIfAborted();
      if (failure) break;
      const relInside = m.rel === "" ? child.rel : child.rel.slice(m.rel.length + 1);
      if (m.exclude?.matches(relInside)) continue;
      const target = join(top, relInside);
      if (child.stat.isDirectory()) {
        await this.copyEntry(child.abs, child.stat, target, true);
        continue;
      }
      if (pending.size >= COPY_CONCURRENCY) await Promise.race(pending);
      const job: Promise<void> = this.copyEntry(child.abs, child.stat, target, true)
        .catch((e: unknown) => {
          failure ??= { e };
        })
        .finally(() => pending.delete(job));
      pending.add(job);
    }
    await Promise.all(pending);
    if (failure) throw failure.e;
  }

  /** Copies one lstat'ed entry to a container path. */
  async copyEntry(abs: string, st: Stats, target: string, nested: boolean): Promise<void> {
    if (st.isDirectory()) {
      await this.ensureDir(target, st, !nested);
      return;
    }
    if (this.skipIgnored(target)) return;
    await this.ensureParents(target);
    const host = await this.resolve(target, false);
    if (this.skipIgnored(toContainerPath(this.root, host))) return;
    const own = this.ownerFor(st);
    if (st.isSymbolicLink()) {
      await this.remove(host);
      await symlink(await readlink(abs), host);
      await lchown(host, own.uid, own.gid);
      await lutimes(host, st.atime, st.mtime);
    } else if (st.isFile() || st.isSocket()) {
      await this.remove(host);
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 && st.isFile() ? this.inodes.get(key) : undefined;
      if (first !== undefined) {
        await link(await first, host);
        this.written.add(toContainerPath(this.root, host));
        return;
      }
      const done = (async () => {
        if (st.isFile()) await copyFile(abs, host);
        else await writeFile(host, ""); // BuildKit copies a socket as an empty regular file
        await lchown(host, own.uid, own.gid);
        await chmod(host, this.mode(st));
        await utimes(host, st.atime, st.mtime);
        return host;
      })();
      if (st.nlink > 1 && st.isFile()) this.inodes.set(key, done);
      await done;
      if (this.attrs.keepCapabilities && st.isFile()) this.capSources.set(host, abs);
    } else {
      return; // devices and FIFOs in a context are not copied
    }
    this.written.add(toContainerPath(this.root, host));
  }

  /** Writes a named blob (heredoc body or downloaded file). */
  async writeContent(target: string, item: Extract<CopyItem, { kind: "content" }>): Promise<void> {
    if (this.skipIgnored(target)) return;
    await this.ensureParents(target);
    const host = await this.resolve(target, false);
    if (this.skipIgnored(toContainerPath(this.root, host))) return;
    const existing = await lstat(host).catch(() => undefined);
    if (existing?.isDirectory()) {
      throw new KilnError("COPY_DEST_IS_DIR", `cannot write ${item.name} to ${target}: it is an existing directory`);
    }
    this.hooks?.removed(toContainerPath(this.root, host));
    await rm(host, { force: true });
    if (Buffer.isBuffer(item.data)) await writeFile(host, item.data);
    else await copyFile(item.data.file, host);
    const own = this.ownerFor({ uid: 0, gid: 0 });
    await lchown(host, own.uid, own.gid);
    await chmod(host, this.attrs.chmod ? this.attrs.chmod(item.mode, false) : item.mode);
    await utimes(host, item.mtime, item.mtime);
    this.written.add(toContainerPath(this.root, host));
  }

  /**
   * Makes `target` a directory. Missing: created with `st`'s metadata (or as an implied parent).
   * Existing: the top-level destination keeps its metadata, nested ones take the source's.
   */
  async ensureDir(target: string, st: Stats | undefined, top: boolean): Promise<void> {
    if (this.skipIgnored(target)) return;
    await this.ensureParents(target);
    const host = await this.resolve(target, true);
    if (this.skipIgnored(toContainerPath(this.root, host))) return;
    const existing = await lstat(host).catch(() => undefined);
    if (existing?.isDirectory()) {
      this.knownDirs.add(target);
      if (top || !st) return;
      await this.setDirMeta(host, st);
      this.touchedDirs.add(toContainerPath(this.root, host));
      return;
    }
    if (existing) await this.remove(host);
    await mkdir(host);
    if (st && !top) await this.setDirMeta(host, st);
    else if (top) {
      // A destination directory COPY creates is 0755 and owned by --chown (else root), whatever the
      // source directory's mode and owner, and --chmod applies only below it (BuildKit).
      const own = this.attrs.owner ?? { uid: 0, gid: 0 };
      await lchown(host, own.uid, own.gid);
      await chmod(host, 0o755);
    } else await this.impliedMeta(host);
    this.written.add(toContainerPath(this.root, host));
    this.knownDirs.add(target);
  }

  /** Removes whatever is at `host` (a replaced directory invalidates the known-dirs cache). */
  private async remove(host: string): Promise<void> {
    const st = await lstat(host).catch(() => undefined);
    if (!st) return;
    this.capSources.delete(host); // what replaces the file is not a copy of that source
    if (st.isDirectory()) {
      this.knownDirs.clear();
      this.knownDirs.add("/");
      for (const h of this.capSources.keys()) if (h.startsWith(host + "/")) this.capSources.delete(h);
    }
    this.hooks?.removed(toContainerPath(this.root, host));
    await rm(host, { recursive: true, force: true });
  }

  private async setDirMeta(host: string, st: Stats): Promise<void> {
    const own = this.ownerFor(st);
    await lchown(host, own.uid, own.gid);
    await chmod(host, this.mode(st));
    this.dirTimes.push({ host, atime: st.atime, mtime: st.mtime });
  }

  private async impliedMeta(host: string): Promise<void> {
    const own = this.attrs.owner ?? { uid: 0, gid: 0 };
    await lchown(host, own.uid, own.gid);
    await chmod(host, this.attrs.chmod ? this.attrs.chmod(0o755, true) : 0o755);
  }

  /** Creates missing parents of `target` as implied directories (owner of the COPY, 0755 or --chmod). */
  async ensureParents(target: string): Promise<void> {
    const parent = target.slice(0, target.lastIndexOf("/")) || "/";
    if (this.knownDirs.has(parent)) return;
    const parts = target.split("/").filter(Boolean);
    parts.pop();
    let cur = "";
    for (const p of parts) {
      cur = `${cur}/${p}`;
      if (this.knownDirs.has(cur)) continue;
      const host = await this.resolve(cur, true);
      const st = await lstat(host).catch(() => undefined);
      if (st?.isDirectory()) {
        this.knownDirs.add(cur);
        continue;
      }
      if (st) {
        throw new KilnError(
          "COPY_DEST_NOT_DIR",
          `cannot copy to ${target}: ${cur} exists in the image and is not a directory`,
        );
      }
      // Concurrent copies into the same missing parent may race: only the creator sets its metadata.
      // `host` is resolved inside the root; components still missing below it are plain names.
      const made = (await mkdir(host, { recursive: true })) !== undefined;
      if (made) await this.impliedMeta(host);
      this.written.add(toContainerPath(this.root, host));
      this.knownDirs.add(cur);
    }
  }

  /** Restores directory times (writing children changed them). */
  /**
   * Gives copied files their sources' `security.capability` (one `getfattr` and one `setfattr` run) and
   * restores directory times. Returns the files whose capability could not be set (e.g. without
   * CAP_SETFCAP), as paths in the root with the reason.
   */
  async finish(): Promise<{ failed: { path: string; reason: string }[]; capabilities?: KnownCapabilities }> {
    let failed: { path: string; reason: string }[] = [];
    let capabilities: KnownCapabilities | undefined;
    if (this.capSources.size > 0) {
      const caps = await readCapabilities([...new Set(this.capSources.values())]);
      const reqs = [...this.capSources]
        .filter(([, src]) => caps.has(src))
        .map(([host, src]) => ({ hostPath: host, attrs: new Map([["security.capability", caps.get(src) as Buffer]]) }));
      const refused = await applyXattrs(reqs);
      failed = refused.map((f) => ({ path: toContainerPath(this.root, f.path), reason: f.reason }));
      // Every file here was created afresh (copyFile carries no xattrs), so it has exactly the
      // capability set on it just now, or none.
      const notSet = new Set(refused.map((f) => f.path));
      const values = new Map<string, Buffer>();
      for (const r of reqs) {
        if (!notSet.has(r.hostPath))
          values.set(toContainerPath(this.root, r.hostPath), r.attrs.get("security.capability") as Buffer);
      }
      capabilities = {
        checked: new Set([...this.capSources.keys()].map((h) => toContainerPath(this.root, h))),
        values,
      };
    }
    for (const d of this.dirTimes.reverse()) await utimes(d.host, d.atime, d.mtime);
    return capabilities ? { failed, capabilities } : { failed };
  }

  /**
   * Paths for the snapshot: everything written, minus what lies below a written directory (the
   * snapshot walks those); a re-stamped existing dir only when nothing below it was written.
   */
  result(): string[] {
    const out = new Set(this.written);
    const ancestors = new Set<string>();
    for (const p of this.written) {
      for (let i = p.lastIndexOf("/"); i > 0; i = p.lastIndexOf("/", i - 1)) ancestors.add(p.slice(0, i));
    }
    for (const d of this.touchedDirs) if (!ancestors.has(d)) out.add(d);
    return [...out].filter((p) => !hasAncestorIn(p, this.written)).sort();
  }
}

function hasAncestorIn(p: string, set: ReadonlySet<string>): boolean {
  for (let i = p.lastIndexOf("/"); i > 0; i = p.lastIndexOf("/", i - 1)) if (set.has(p.slice(0, i))) return true;
  return false;
}
