import { execFile } from "node:child_process";
import { copyFile, mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { sh } from "../integration/helpers.js";
import { repoRoot } from "./tmp.js";

/**
 * A namespace jail for in-place builds: the in-place back-end must never run on the test machine's own
 * root, so each build runs in a private mount + pid namespace chrooted into a directory laid out like
 * the kiln image (node, its libraries and kiln under /kaniko; /.dockerenv marks it as a container).
 * Needs root (unshare, mount, chroot).
 */

/** The shared libraries `ldd` lists for a binary (the dynamic loader included). */
async function sharedLibs(binary: string): Promise<string[]> {
  const out = await sh("ldd", [binary]);
  const libs: string[] = [];
  for (const line of out.split("\n")) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  return libs;
}

const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Creates a jail at `dir` whose /kaniko holds node + its libraries; /kaniko/ctx is the build context dir. */
export async function makeJail(dir: string): Promise<string> {
  for (const d of ["kaniko/bin", "kaniko/lib", "kaniko/kiln", "kaniko/tmp", "kaniko/ctx", "proc", "dev"])
    await mkdir(path.join(dir, d), { recursive: true });
  await copyFile(process.execPath, path.join(dir, "kaniko/bin/node"));
  for (const lib of await sharedLibs(process.execPath))
    await copyFile(lib, path.join(dir, "kaniko/lib", path.basename(lib)));
  await writeFile(path.join(dir, ".dockerenv"), "");
  return dir;
}

/** Runs `kiln build …args` chrooted into `jail` (kiln's repo bound read-only at /kaniko/kiln). */
export async function buildInJail(jail: string, args: string[]): Promise<{ code: number; output: string }> {
  const loader = (await readdir(path.join(jail, "kaniko/lib"))).find((n) => n.startsWith("ld-linux"));
  if (!loader) throw new Error("no dynamic loader in ldd's output");
  const kiln = [
    `/kaniko/lib/${loader}`,
    "--library-path",
    "/kaniko/lib",
    "/kaniko/bin/node",
    "/kaniko/kiln/bin/kiln",
    "build",
    ...args,
  ];
  const script = [
    "set -e",
    `J=${shq(jail)}`,
    `mount --bind ${shq(repoRoot())} "$J/kaniko/kiln"`,
    `mount -o remount,bind,ro "$J/kaniko/kiln"`,
    'mount -t proc proc "$J/proc"',
    'mount --rbind /dev "$J/dev"',
    'test -x "$J/kaniko/kiln/native/kiln-exec"',
    `exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TMPDIR=/kaniko/tmp KANIKO_DIR=/kaniko chroot "$J" ${kiln.map(shq).join(" ")}`,
  ].join("\n");
  return new Promise((resolve) => {
    execFile(
      "unshare",
      ["--mount", "--pid", "--fork", "--propagation", "private", "sh", "-c", script],
      { timeout: 240_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, output: stdout + stderr });
      },
    );
  });
}
