import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const exec = promisify(execFile);

/** Runs a command and returns stdout (throws with stderr on failure). */
export async function sh(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  const r = await exec(cmd, args, { cwd: opts.cwd, maxBuffer: 64 * 1024 * 1024 });
  return r.stdout;
}

/** Writes a tree of files: keys are relative paths, values contents (or [content, mode]). */
export async function writeTree(root: string, files: Record<string, string | [string, number]>): Promise<void> {
  for (const [rel, v] of Object.entries(files)) {
    const p = path.join(root, rel);
    await mkdir(path.dirname(p), { recursive: true });
    const [content, mode] = typeof v === "string" ? [v, 0o644] : v;
    await writeFile(p, content, { mode });
  }
}

/** `skopeo inspect` of a registry image (plain HTTP), parsed. */
export async function skopeoInspect(
  ref: string,
  what: "--config" | "--raw" | "" = "",
): Promise<Record<string, unknown>> {
  const args = ["inspect", "--tls-verify=false", ...(what ? [what] : []), `docker://${ref}`];
  return JSON.parse(await sh("skopeo", args)) as Record<string, unknown>;
}

/** Copies a registry image into an OCI layout and unpacks it with umoci (an unpacker that is not kiln). */
export async function unpackWithUmoci(ref: string, work: string): Promise<string> {
  const layout = path.join(work, "layout");
  await mkdir(work, { recursive: true });
  await sh("skopeo", ["copy", "--src-tls-verify=false", `docker://${ref}`, `oci:${layout}:img`]);
  const bundle = path.join(work, "bundle");
  await sh("umoci", ["unpack", "--image", `${layout}:img`, bundle]);
  return path.join(bundle, "rootfs");
}
