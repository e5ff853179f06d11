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
export async function readCapabilities(hostPaths: readonly string[]): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  if (hostPaths.length === 0) return out;
  const tool = await findTool("getfattr");
  if (tool === undefined) return out;
  const CHUNK = 1024;
  for (let i = 0; i < hostPaths.length; i += CHUNK) {
    const chunk = hostPaths.slice(i, i + CHUNK);
    const res = await runTool(tool, [
      "-h",
      "--absolute-names",
      "-e",
      "base64",
      "-n",
      "security.capability",
      "--",
      ...chunk,
    ]);
    // getfattr exits non-zero when some file lacks the attribute; parse whatever it printed.
    let current: string | undefined;
    for (const line of res.stdout.toString("latin1").split("\n")) {
      if (line.startsWith("# file: ")) current = unescapeName(line.slice(8));
      else if (current !== undefined && line.startsWith("security.capability=0s")) {
        out.set(current, Buffer.from(line.slice("security.capability=0s".length), "base64"));
      }
    }
  }
  return out;
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
