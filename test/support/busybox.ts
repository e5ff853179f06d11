/**
 * A busybox root filesystem made from the host's busybox-static binary (test-environment.md §3), the
 * offline stand-in for the `busybox` image in tests.
 */
import { execFile } from "node:child_process";
import { chmod, chown, copyFile, lstat, lutimes, mkdir, readdir, symlink, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** The busybox binary the root is made from (Debian's busybox-static). */
export const BUSYBOX_BINARY = "/bin/busybox";

/** The fixed mtime of every entry in the root: 2024-01-01T00:00:00Z, as seconds since the epoch. */
export const BUSYBOX_ROOT_MTIME = 1704067200;

/** Contents of the root's /etc/passwd: root, nobody and the unprivileged user kiln (1000:1000). */
export const BUSYBOX_PASSWD = [
  "root:x:0:0:root:/root:/bin/sh",
  "nobody:x:65534:65534:nobody:/nonexistent:/bin/false",
  "kiln:x:1000:1000:kiln:/home/kiln:/bin/sh",
  "",
].join("\n");

/** Contents of the root's /etc/group: root, nogroup, kiln (1000), and extra (2000) with member kiln. */
export const BUSYBOX_GROUP = ["root:x:0:", "nogroup:x:65534:", "kiln:x:1000:", "extra:x:2000:kiln", ""].join("\n");

/** Directories of the root with their modes (created in this order). */
const DIRECTORIES: ReadonlyArray<readonly [string, number]> = [
  ["bin", 0o755],
  ["dev", 0o755],
  ["etc", 0o755],
  ["home", 0o755],
  ["home/kiln", 0o755],
  ["proc", 0o555],
  ["root", 0o700],
  ["sbin", 0o755],
  ["sys", 0o555],
  ["tmp", 0o1777],
  ["usr", 0o755],
  ["usr/bin", 0o755],
  ["usr/sbin", 0o755],
  ["var", 0o755],
];

/** Names of the applets compiled into `busybox` (`busybox --list`), without "busybox" itself. */
export async function busyboxApplets(binary: string = BUSYBOX_BINARY): Promise<string[]> {
  const { stdout } = await execFileAsync(binary, ["--list"]);
  return stdout
    .split("\n")
    .map((s) => s.trim())
    .filter((s) => s !== "" && s !== "busybox" && !s.includes("/"));
}

/**
 * Fills `dir` (created if needed; should be empty) with a busybox root: /bin/busybox plus an absolute
 * symlink `/bin/<applet> -> /bin/busybox` for every applet (as `busybox --install -s /bin` makes), /etc/passwd
 * and /etc/group ({@link BUSYBOX_PASSWD}, {@link BUSYBOX_GROUP}), /tmp mode 1777, /root mode 0700, and
 * /home/kiln owned by 1000:1000 (ownership only when running as root). Every entry gets the mtime
 * {@link BUSYBOX_ROOT_MTIME}, so two roots made from the same binary are identical.
 */
export async function makeBusyboxRoot(dir: string): Promise<void> {
  const root = path.resolve(dir);
  await mkdir(root, { recursive: true });
  await chmod(root, 0o755);
  for (const [rel, mode] of DIRECTORIES) {
    const p = path.join(root, rel);
    await mkdir(p, { recursive: true });
    await chmod(p, mode); // mkdir's mode is filtered by the umask
  }
  const bin = path.join(root, "bin", "busybox");
  await copyFile(BUSYBOX_BINARY, bin);
  await chmod(bin, 0o755);
  for (const applet of await busyboxApplets()) {
    await symlink("/bin/busybox", path.join(root, "bin", applet));
  }
  await writeFile(path.join(root, "etc", "passwd"), BUSYBOX_PASSWD, { mode: 0o644 });
  await writeFile(path.join(root, "etc", "group"), BUSYBOX_GROUP, { mode: 0o644 });
  await chmod(path.join(root, "etc", "passwd"), 0o644);
  await chmod(path.join(root, "etc", "group"), 0o644);
  if (process.getuid?.() === 0) {
    await chown(path.join(root, "home", "kiln"), 1000, 1000);
  }
  await setMtimes(root, BUSYBOX_ROOT_MTIME);
}

/** Sets atime and mtime of everything under `dir` (children before their directory, symlinks themselves). */
async function setMtimes(dir: string, seconds: number): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) await setMtimes(p, seconds);
    else await lutimes(p, seconds, seconds);
  }
  const st = await lstat(dir);
  if (st.isDirectory()) await lutimes(dir, seconds, seconds);
}
