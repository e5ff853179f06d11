import { mapLimit } from "../common/map-limit.js";
import { findTool, runTool } from "./exec-tool.js";

/** Tool runs in flight at once: two cores keep them busy. */
const TOOL_RUNS = 2;

/**
 * Splits paths into argument lists for one tool run each: at most 512 KiB of arguments (Linux allows 2 MiB
 * of arguments and environment by default) and 8192 paths per run. A RUN that wrote 5,000 files needs one
 * run instead of five.
 */
export function pathBatches(paths: readonly string[], maxBytes = 512 * 1024, maxCount = 8192): string[][] {
  const out: string[][] = [];
  let cur: string[] = [];
  let bytes = 0;
  for (const p of paths) {
    const n = Buffer.byteLength(p) + 1;
    if (cur.length > 0 && (bytes + n > maxBytes || cur.length >= maxCount)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(p);
    bytes += n;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/**
 * The argument lists of the tool runs over `paths` ({@link pathBatches}): more than 1,024 paths are split
 * into at least two, so that both of the {@link TOOL_RUNS} concurrent runs have work.
 */
export function toolBatches(paths: readonly string[]): string[][] {
  return pathBatches(paths, undefined, Math.max(1024, Math.ceil(paths.length / TOOL_RUNS)));
}

/** Extended attributes kiln restores from layers; everything else is reported as skipped. */
export function isRestorableXattr(name: string): boolean {
  return name === "security.capability" || name.startsWith("user.") || name.startsWith("trusted.");
}

/** One file's attributes to set. */
export interface XattrRequest {
  hostPath: string;
  attrs: Map<string, Buffer>;
}

/** Largest xattr value Linux accepts (XATTR_SIZE_MAX): anything larger could never be set. */
export const XATTR_VALUE_MAX = 64 * 1024;

/**
 * Bytes of xattrs a layer (or ADD archive) extraction keeps before handing them to setfattr: beyond it
 * they are applied in batches, so that a layer of many files with large attributes cannot hold them all.
 */
export const MAX_PENDING_XATTR_BYTES = 64 * 1024 * 1024;

/** Bytes of setfattr input per run: bounds the dump string built in memory. */
const MAX_DUMP_BYTES = 16 * 1024 * 1024;

/** Characters of setfattr's error output kept in each skipped entry's reason (it names every failed file). */
const MAX_REASON_STDERR = 512;

/** Bytes a request holds (names and values), for {@link MAX_PENDING_XATTR_BYTES}. */
function xattrRequestBytes(r: XattrRequest): number {
  let n = 0;
  for (const [k, v] of r.attrs) n += k.length + v.length;
  return n;
}

/**
 * The xattrs of one layer or archive extraction waiting for setfattr (one run sets many files' at once),
 * applied in batches of {@link MAX_PENDING_XATTR_BYTES}: a layer of many files with large attributes
 * never holds them all. A later request for a path replaces a queued one; one already applied in an
 * earlier batch stays applied (only a hostile layer names a path twice with 64 MiB of xattrs between).
 */
export class XattrQueue {
  readonly #pending = new Map<string, XattrRequest>();
  #bytes = 0;
  /** Awaited before each batch: the files must exist (e.g. creations still in flight). */
  readonly #ready: () => Promise<void>;

  constructor(ready: () => Promise<void> = () => Promise.resolve()) {
    this.#ready = ready;
  }

  /** The queued request of `hostPath`, if any. */
  get(hostPath: string): XattrRequest | undefined {
    return this.#pending.get(hostPath);
  }

  /** Drops the queued request of `hostPath` (the entry was replaced). */
  delete(hostPath: string): void {
    const prior = this.#pending.get(hostPath);
    if (prior === undefined) return;
    this.#bytes -= xattrRequestBytes(prior);
    this.#pending.delete(hostPath);
  }

  /** Queues `request`, applying what is queued first when the total would pass the limit; returns that batch's failures. */
  async add(request: XattrRequest): Promise<{ path: string; reason: string }[]> {
    this.delete(request.hostPath);
    const bytes = xattrRequestBytes(request);
    const failed = this.#pending.size > 0 && this.#bytes + bytes > MAX_PENDING_XATTR_BYTES ? await this.flush() : [];
    this.#pending.set(request.hostPath, request);
    this.#bytes += bytes;
    return failed;
  }

  /** Applies everything queued; returns the failures (see {@link applyXattrs}). */
  async flush(): Promise<{ path: string; reason: string }[]> {
    if (this.#pending.size === 0) return [];
    await this.#ready();
    const reqs = [...this.#pending.values()];
    this.#pending.clear();
    this.#bytes = 0;
    return applyXattrs(reqs);
  }
}

/**
 * Sets xattrs on many files with `setfattr --restore=-` runs (Debian package `attr`; Node has no
 * setxattr), one per {@link MAX_DUMP_BYTES} of input so the dump never grows with the number of files.
 * Returns the requests that could not be applied with the reason (tool missing or failure; setfattr's
 * error output cut to {@link MAX_REASON_STDERR} characters, as it is repeated for every file of the run).
 */
export async function applyXattrs(reqs: readonly XattrRequest[]): Promise<{ path: string; reason: string }[]> {
  if (reqs.length === 0) return [];
  const tool = await findTool("setfattr");
  if (tool === undefined) {
    return reqs.map((r) => ({
      path: r.hostPath,
      reason: "xattrs not applied: setfattr (Debian package attr) not installed",
    }));
  }
  const failed: { path: string; reason: string }[] = [];
  for (const batch of dumpBatches(reqs)) {
    const res = await runTool(tool, ["-h", "--restore=-"], batch.dump);
    if (res.ok) continue;
    const reason = `xattrs not applied: setfattr failed: ${clip(res.stderr, MAX_REASON_STDERR)}`;
    for (const r of batch.reqs) failed.push({ path: r.hostPath, reason });
  }
  return failed;
}

/** Groups requests into setfattr dumps of at most {@link MAX_DUMP_BYTES} (a larger single file runs alone). */
function dumpBatches(reqs: readonly XattrRequest[]): { reqs: XattrRequest[]; dump: string }[] {
  const out: { reqs: XattrRequest[]; dump: string }[] = [];
  let cur: { reqs: XattrRequest[]; dump: string } = { reqs: [], dump: "" };
  for (const r of reqs) {
    let text = `# file: ${escapeName(r.hostPath)}\n`;
    for (const [k, v] of r.attrs) text += `${escapeName(k)}=0s${v.toString("base64")}\n`;
    text += "\n";
    if (cur.reqs.length > 0 && cur.dump.length + text.length > MAX_DUMP_BYTES) {
      out.push(cur);
      cur = { reqs: [], dump: "" };
    }
    cur.reqs.push(r);
    cur.dump += text;
  }
  if (cur.reqs.length > 0) out.push(cur);
  return out;
}

/** `text` cut to `max` characters, saying how much was left out. */
function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/**
 * Reads `security.capability` of many files with batched `getfattr` runs; returns host path → value for
 * files that have it. Returns an empty map when `getfattr` is not installed.
 */
export function readCapabilities(hostPaths: readonly string[]): Promise<Map<string, Buffer>> {
  return readXattr(hostPaths, "security.capability");
}

/**
 * Reads the attribute `name` of many paths (symlinks not followed) with batched `getfattr` runs; returns
 * host path → value for paths that have it (empty when `getfattr` is not installed).
 */
export async function readXattr(hostPaths: readonly string[], name: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  if (hostPaths.length === 0) return out;
  const tool = await findTool("getfattr");
  if (tool === undefined) return out;
  const prefix = `${escapeName(name)}=0s`;
  const runs = await mapLimit(toolBatches(hostPaths), TOOL_RUNS, (chunk) =>
    runTool(tool, ["-h", "--absolute-names", "-e", "base64", "-n", name, "--", ...chunk]),
  );
  for (const res of runs) {
    // getfattr exits non-zero when some file lacks the attribute; parse whatever it printed.
    let current: string | undefined;
    for (const line of res.stdout.toString("latin1").split("\n")) {
      if (line.startsWith("# file: ")) current = unescapeName(line.slice(8));
      else if (current !== undefined && line.startsWith(prefix)) {
        out.set(current, Buffer.from(line.slice(prefix.length), "base64"));
      }
    }
  }
  return out;
}

/**
 * Reads all attributes whose names match the regular expression `pattern` (getfattr `-m`) of many paths
 * (symlinks not followed); returns host path → name → value for paths that have any.
 */
export async function readXattrsMatching(
  hostPaths: readonly string[],
  pattern: string,
): Promise<Map<string, Map<string, Buffer>>> {
  const out = new Map<string, Map<string, Buffer>>();
  if (hostPaths.length === 0) return out;
  const tool = await findTool("getfattr");
  if (tool === undefined) return out;
  const runs = await mapLimit(toolBatches(hostPaths), TOOL_RUNS, (chunk) =>
    runTool(tool, ["-h", "--absolute-names", "-e", "base64", "-d", "-m", pattern, "--", ...chunk]),
  );
  for (const res of runs) {
    let current: Map<string, Buffer> | undefined;
    for (const line of res.stdout.toString("latin1").split("\n")) {
      if (line.startsWith("# file: ")) {
        current = new Map();
        out.set(unescapeName(line.slice(8)), current);
        continue;
      }
      const eq = line.indexOf("=");
      if (current === undefined || eq <= 0) continue;
      const v = line.slice(eq + 1);
      current.set(
        unescapeName(line.slice(0, eq)),
        v.startsWith("0s") ? Buffer.from(v.slice(2), "base64") : Buffer.alloc(0),
      );
    }
  }
  return out;
}

/** Removes the attribute `name` from many paths (symlinks not followed); false when setfattr failed or is missing. */
export async function removeXattr(hostPaths: readonly string[], name: string): Promise<boolean> {
  if (hostPaths.length === 0) return true;
  const tool = await findTool("setfattr");
  if (tool === undefined) return false;
  let ok = true;
  const runs = await mapLimit(toolBatches(hostPaths), TOOL_RUNS, (chunk) =>
    runTool(tool, ["-h", "-x", name, "--", ...chunk]),
  );
  for (const res of runs) {
    // Hardlinked paths share one inode: the attribute is already gone from the second link, which
    // setfattr reports as "No such attribute" — that is success here.
    ok &&=
      res.ok ||
      (res.stderr ?? "")
        .split("\n")
        .filter((l) => l.trim() !== "")
        .every((l) => /No such attribute/.test(l));
  }
  return ok;
}

/** Escapes a name the way getfattr dumps do: every byte outside printable non-space ASCII, and `\`, as `\ooo`. */
function escapeName(s: string): string {
  let out = "";
  for (const b of Buffer.from(s, "utf8")) {
    if (b <= 0x20 || b >= 0x7f || b === 0x5c || b === 0x3d) out += "\\" + b.toString(8).padStart(3, "0");
    else out += String.fromCharCode(b);
  }
  return out;
}

function unescapeName(latin1: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < latin1.length; i++) {
    const m = /^\\([0-7]{3})/.exec(latin1.slice(i, i + 4));
    if (m && m[1] !== undefined) {
      bytes.push(parseInt(m[1], 8) & 0xff);
      i += 3;
    } else bytes.push(latin1.charCodeAt(i) & 0xff);
  }
  return Buffer.from(bytes).toString("utf8");
}
