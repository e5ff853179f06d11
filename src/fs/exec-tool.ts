import { execFile } from "node:child_process";
import { access, constants } from "node:fs/promises";
import * as path from "node:path";

/** Result of running a helper binary. */
export interface ToolResult {
  ok: boolean;
  stdout: Buffer;
  stderr: string;
}

/** Absolute path of an executable named `name` on `$PATH` (or common sbin dirs), or undefined. */
export async function findTool(name: string): Promise<string | undefined> {
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/usr/bin", "/sbin", "/bin"];
  for (const d of dirs) {
    if (d === "") continue;
    const p = path.join(d, name);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      // try the next directory
    }
  }
  return undefined;
}

/** Runs `file args…` (no shell), optionally feeding `input` on stdin; never throws for a non-zero exit. */
export function runTool(file: string, args: readonly string[], input?: string | Buffer): Promise<ToolResult> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { encoding: "buffer", maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ ok: err === null, stdout, stderr: stderr.toString("utf8").trim() || String(err ?? "") });
    });
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(input ?? "");
  });
}
