import { chmod, copyFile, lchown, lutimes, mkdir, readlink, rm, stat, symlink, utimes, lstat } from "node:fs/promises";
import type { Stats } from "node:fs";
import path from "node:path";
import { KilnError } from "../../common/errors.js";
import type { ContextSource, DirContext } from "../../context/index.js";
import { cleanContainerPath, resolveInRoot } from "../../fs/index.js";

/** Ownership and mode options of one COPY/ADD. */
export interface CopyAttrs {
  uid: number;
  gid: number;
  /** `--chmod` as a function of the source's mode and whether the entry is a directory. */
  chmod?: (mode: number, isDir: boolean) => number;
}

/** One planned copy of a source entry to a container path. */
interface CopyItem {
  src: ContextSource;
  dest: string;
}

/**
 * Copies COPY/ADD sources from a context (the build context or another stage's root) into a root,
 * with Docker's rules: a directory source copies its contents, several sources or a trailing "/"
 * make the destination a directory, an existing directory destination receives the file inside it,
 * symlinks inside copied directories are copied as links, created parent directories get the COPY's
 * owner. Every host path goes through {@link resolveInRoot}. Returns the container paths written
 * (for the snapshot; no walk needed).
 */
export async function copyIntoRoot(
  root: string,
  from: DirContext,
  sources: readonly string[],
  destRaw: string,
  workdir: string,
  attrs: CopyAttrs,
): Promise<string[]> {
  const destIsDirSyntax = destRaw.endsWith("/") || destRaw.endsWith("/.") || destRaw === "." || destRaw === "..";
  const dest = cleanContainerPath(destRaw.startsWith("/") ? destRaw : `${workdir}/${destRaw}`);
  const matched: ContextSource[] = [];
  for (const s of sources) matched.push(...(await from.resolve(s)));
  if (matched.length === 0) {
    throw new KilnError("COPY_NO_SOURCE", `no source files were specified (nothing matched ${sources.join(" ")})`);
  }
  const destHost = await resolveInRoot(root, dest, { followFinal: true });
  const destStat = await stat(destHost).catch(() => undefined);
  const intoDir = destIsDirSyntax || matched.length > 1 || destStat?.isDirectory() === true;
  if (matched.length > 1 && !destIsDirSyntax && destStat && !destStat.isDirectory()) {
    throw new KilnError(
      "COPY_DEST_NOT_DIR",
      `when using COPY with more than one source file, the destination must be a directory and end with a /`,
    );
  }

  const items: CopyItem[] = [];
  for (const m of matched) {
    const st = await followedStat(m);
    if (st.isDirectory()) {
      items.push({ src: { ...m, stat: st }, dest });
      for await (const child of from.walk(m.rel)) {
        const relInside = m.rel === "" ? child.rel : child.rel.slice(m.rel.length + 1);
        items.push({ src: child, dest: cleanContainerPath(`${dest}/${relInside}`) });
      }
    } else {
      const base = m.rel === "" ? "" : path.posix.basename(m.rel);
      items.push({ src: { ...m, stat: st }, dest: intoDir ? cleanContainerPath(`${dest}/${base}`) : dest });
    }
  }

  const written = new Set<string>();
  const dirTimes: { host: string; st: Stats }[] = [];
  for (const item of items) {
    await ensureParents(root, item.dest, attrs, written);
    const host = await resolveInRoot(root, item.dest, { followFinal: false });
    const st = item.src.stat;
    const mode = attrs.chmod ? attrs.chmod(st.mode & 0o7777, st.isDirectory()) : st.mode & 0o7777;
    if (st.isDirectory()) {
      const existing = await lstat(host).catch(() => undefined);
      if (existing && !existing.isDirectory()) await rm(host, { recursive: true, force: true });
      if (!existing || !existing.isDirectory()) await mkdir(host);
      await lchown(host, attrs.uid, attrs.gid);
      await chmod(host, mode);
      dirTimes.push({ host, st });
    } else if (st.isSymbolicLink()) {
      await rm(host, { recursive: true, force: true });
      await symlink(await readlink(item.src.abs), host);
      await lchown(host, attrs.uid, attrs.gid);
      await lutimes(host, st.atime, st.mtime);
    } else if (st.isFile()) {
      const existing = await lstat(host).catch(() => undefined);
      if (existing) await rm(host, { recursive: true, force: true });
      await copyFile(item.src.abs, host);
      await lchown(host, attrs.uid, attrs.gid);
      await chmod(host, mode);
      await utimes(host, st.atime, st.mtime);
    } else {
      continue; // sockets, devices and FIFOs in a context are not copied (Docker skips them too)
    }
    written.add(item.dest);
  }
  // Directory mtimes last: writing children changed them.
  for (const d of dirTimes.reverse()) await utimes(d.host, d.st.atime, d.st.mtime);
  return [...written].sort();
}

async function followedStat(s: ContextSource): Promise<Stats> {
  // A source named explicitly is followed when it is a symlink (resolved inside the context by resolve()).
  return s.stat.isSymbolicLink() ? await stat(s.abs) : s.stat;
}

/** Creates missing parent directories of `dest` (0755, owned by the COPY's owner, like BuildKit). */
async function ensureParents(root: string, dest: string, attrs: CopyAttrs, written: Set<string>): Promise<void> {
  const parts = dest.split("/").filter(Boolean);
  parts.pop();
  let cur = "";
  for (const p of parts) {
    cur = `${cur}/${p}`;
    const host = await resolveInRoot(root, cur, { followFinal: true });
    const st = await lstat(host).catch(() => undefined);
    if (st?.isDirectory()) continue;
    if (st) throw new KilnError("COPY_DEST_NOT_DIR", `cannot copy to ${dest}: ${cur} exists and is not a directory`);
    await mkdir(host, { mode: 0o755 });
    await lchown(host, attrs.uid, attrs.gid);
    await chmod(host, 0o755);
    written.add(cur);
  }
}
