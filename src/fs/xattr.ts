import { findTool, runTool } from "./exec-tool.js";

/** Extended attributes kiln restores from layers; everything else is reported as skipped. */
export function isRestorableXattr(name: string): boolean {
  return name === "security.capability" || name.startsWith("user.") || name.startsWith("trusted.");
}

/** One file's attributes to set. */
export interface XattrRequest {
  hostPath: string;
  attrs: Map<string, Buffer>;
}

/**
 * Sets xattrs on many files with one `setfattr --restore=-` run (Debian package `attr`; Node has no
 * setxattr). Returns the requests that could not be applied with the reason (tool missing or failure).
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
  let dump = "";
  for (const r of reqs) {
    dump += `# file: ${escapeName(r.hostPath)}\n`;
    for (const [k, v] of r.attrs) dump += `${escapeName(k)}=0s${v.toString("base64")}\n`;
    dump += "\n";
  }
  const res = await runTool(tool, ["-h", "--restore=-"], dump);
  if (res.ok) return [];
  return reqs.map((r) => ({ path: r.hostPath, reason: `xattrs not applied: setfattr failed: ${res.stderr}` }));
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
  const CHUNK = 1024;
  const prefix = `${escapeName(name)}=0s`;
  for (let i = 0; i < hostPaths.length; i += CHUNK) {
    const chunk = hostPaths.slice(i, i + CHUNK);
    const res = await runTool(tool, ["-h", "--absolute-names", "-e", "base64", "-n", name, "--", ...chunk]);
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
  for (let i = 0; i < hostPaths.length; i += 1024) {
    const chunk = hostPaths.slice(i, i + 1024);
    const res = await runTool(tool, ["-h", "--absolute-names", "-e", "base64", "-d", "-m", pattern, "--", ...chunk]);
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
  for (let i = 0; i < hostPaths.length; i += 1024) {
    const res = await runTool(tool, ["-h", "-x", name, "--", ...hostPaths.slice(i, i + 1024)]);
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
