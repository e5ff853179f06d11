import { spawn } from "node:child_process";
import * as path from "node:path";
import type { TarEntryType } from "../image/tar/index.js";
import { findTool, runTool } from "./exec-tool.js";
import type { IndexEntry } from "./file-index.js";
import type { IgnoreList } from "./ignore-list.js";

/** One record per path: type, mode, uid, gid, size, mtime, ctime, inode, device, links, path, link target. */
const FORMAT = "%y\\0%m\\0%U\\0%G\\0%s\\0%T@\\0%C@\\0%i\\0%D\\0%n\\0%P\\0%l\\0";
const FIELDS = 12;
/** A name no directory entry can have: probes ignore rules that cover every child of a directory. */
const PROBE = "\0probe";

const TYPES: Record<string, TarEntryType> = { f: "file", d: "dir", l: "symlink", c: "char", b: "block", p: "fifo" };

/** Options of {@link findWalk}. */
export interface FindWalkOptions {
  ignore?: IgnoreList | undefined;
  signal?: AbortSignal | undefined;
  /** Called once per directory with the names it holds (after all of them were visited). */
  onDir?: ((dir: string, names: readonly string[]) => void) | undefined;
}

/**
 * Path of GNU find when it is installed (its `-printf` is what {@link findWalk} needs), else undefined.
 * busybox and BSD find lack `-printf`; callers then fall back to the Node walk.
 */
export async function gnuFind(): Promise<string | undefined> {
  const tool = await findTool("find");
  if (tool === undefined) return undefined;
  const r = await runTool(tool, ["--version"]);
  return r.ok && r.stdout.toString("utf8").includes("GNU findutils") ? tool : undefined;
}

/** Nanoseconds from find's "%T@" form ("1732630000.1234567890"). */
function nsOf(s: string): bigint {
  const dot = s.indexOf(".");
  if (dot < 0) return BigInt(s) * 1_000_000_000n;
  const neg = s.startsWith("-");
  const sec = BigInt(s.slice(0, dot));
  const frac = BigInt((s.slice(dot + 1) + "000000000").slice(0, 9));
  return sec * 1_000_000_000n + (neg ? -frac : frac);
}

/**
 * The metadata walk done by GNU find (`find ROOT -printf …`, lstat only, never following symlinks):
 * calls `visit` with each non-ignored container path and its {@link IndexEntry}, parents first, and never
 * reports paths below an ignored one. Same results as the Node walk at find's speed: the per-path work in
 * Node is parsing one record instead of a system call plus a stats object. Sockets are skipped.
 */
export async function findWalk(
  find: string,
  root: string,
  opts: FindWalkOptions,
  visit: (containerPath: string, e: IndexEntry) => void,
): Promise<void> {
  const hostRoot = path.resolve(root);
  const ig = opts.ignore;
  opts.signal?.throwIfAborted();
  const child = spawn(find, [hostRoot, "-mindepth", "1", "-printf", FORMAT], {
    stdio: ["ignore", "pipe", "pipe"],
    signal: opts.signal,
  });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });
  let spawnError: Error | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.once("error", (e) => {
      spawnError = e;
      resolve(null);
    });
    child.once("close", (code) => resolve(code));
  });
  const names = new Map<string, string[]>();
  let skipped: string | undefined; // last ignored dir: find lists its subtree right after it
  const checkKids = new Map<string, boolean>(); // dir → whether its children may be ignored
  const fields: string[] = [];
  let rest: Buffer = Buffer.alloc(0);
  for await (const chunk of child.stdout) {
    const buf: Buffer = rest.length > 0 ? Buffer.concat([rest, chunk as Buffer]) : (chunk as Buffer);
    let start = 0;
    for (;;) {
      const nul = buf.indexOf(0, start);
      if (nul < 0) break;
      fields.push(buf.toString("utf8", start, nul));
      start = nul + 1;
      if (fields.length === FIELDS) {
        record(fields);
        fields.length = 0;
      }
    }
    rest = buf.subarray(start);
  }
  const code = await exited;
  opts.signal?.throwIfAborted();
  if (spawnError !== undefined) throw spawnError;
  // Exit status 1 with output means some paths vanished or were unreadable meanwhile: like the Node walk, skip them.
  if (code !== 0 && code !== 1) throw new Error(`find ${hostRoot} exited with ${code}: ${stderr.trim()}`);
  if (opts.onDir !== undefined) {
    if (!names.has("/")) names.set("/", []);
    for (const [dir, list] of names) opts.onDir(dir, list);
  }

  function record(f: string[]): void {
    const rel = f[10] as string;
    const p = "/" + rel;
    const slash = p.lastIndexOf("/");
    const dir = slash === 0 ? "/" : p.slice(0, slash);
    if (skipped !== undefined && p.startsWith(skipped)) return;
    if (ig !== undefined) {
      let check = checkKids.get(dir);
      if (check === undefined) {
        check = ig.isAncestorOfIgnored(dir) || ig.ignores(dir === "/" ? "/" + PROBE : dir + "/" + PROBE);
        checkKids.set(dir, check);
      }
      if (check && ig.ignores(p)) {
        if (f[0] === "d") skipped = p + "/";
        return;
      }
    }
    let list = names.get(dir);
    if (list === undefined) names.set(dir, (list = []));
    list.push(p.slice(slash + 1));
    const type = TYPES[f[0] as string];
    if (type === undefined) return;
    if (type === "dir" && !names.has(p)) names.set(p, []);
    const e: IndexEntry = {
      type,
      mode: parseInt(f[1] as string, 8),
      uid: Number(f[2]),
      gid: Number(f[3]),
      size: type === "file" || type === "symlink" ? Number(f[4]) : 0,
      mtimeNs: nsOf(f[5] as string),
      ctimeNs: nsOf(f[6] as string),
      ino: Number(f[7]),
      dev: Number(f[8]),
      nlink: Number(f[9]),
      ...(type === "symlink" ? { linkTarget: f[11] as string } : {}),
    };
    visit(p, e);
  }
}
