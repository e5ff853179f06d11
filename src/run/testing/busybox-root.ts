import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, copyFile, lstat, mkdir, mkdtemp, readdir, readlink, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";

/** Test support: applets linked into a busybox test root. */
const APPLETS = [
  "sh",
  "echo",
  "cat",
  "id",
  "ls",
  "sleep",
  "touch",
  "mkdir",
  "env",
  "pwd",
  "mount",
  "hostname",
  "ps",
  "kill",
  "true",
];

/** Test support: the host's static busybox (package busybox-static). */
export const BUSYBOX = "/bin/busybox";

/** Test support: builds the kiln-exec helper (if stale) and returns its path, or a reason it cannot be used. */
export function buildHelper(): { helper?: string; reason?: string } {
  if (process.getuid?.() !== 0) return { reason: "these tests need root" };
  if (!existsSync(BUSYBOX)) return { reason: `${BUSYBOX} is missing (apt-get install busybox-static)` };
  const r = spawnSync(process.execPath, ["scripts/build-helper.mjs"], { cwd: process.cwd(), encoding: "utf8" });
  const helper = path.resolve(process.cwd(), "native/kiln-exec");
  if (r.status !== 0 || !existsSync(helper)) return { reason: `helper build failed: ${r.stderr}` };
  return { helper };
}

/** Test support: a tiny root filesystem made of busybox, /etc/passwd, /etc/group, /tmp and /work. */
export async function makeBusyboxRoot(): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), "kiln-run-test-"));
  await chmod(root, 0o755);
  await mkdir(path.join(root, "bin"));
  await mkdir(path.join(root, "etc"));
  await mkdir(path.join(root, "tmp"), { mode: 0o1777 });
  await mkdir(path.join(root, "work"));
  await copyFile(BUSYBOX, path.join(root, "bin", "busybox"));
  await chmod(path.join(root, "bin", "busybox"), 0o755);
  for (const a of APPLETS) await symlink("busybox", path.join(root, "bin", a));
  await writeFile(
    path.join(root, "etc", "passwd"),
    "root:x:0:0:root:/root:/bin/sh\nbuilder:x:1000:1000::/work:/bin/sh\n",
  );
  await writeFile(path.join(root, "etc", "group"), "root:x:0:\ntty:x:5:\nbuilder:x:1000:\n");
  return root;
}

/**
 * Test support: every entry below `root` as "path mode size-or-dir-mtime link", sorted, for before/after
 * comparisons. Directory mtimes are rounded to whole milliseconds: the runner restores the mtimes of
 * parents of the mount targets it removes through Node's utimes, which carries sub-microsecond error.
 */
export async function treeListing(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const name of await readdir(dir)) {
      const p = path.join(dir, name);
      const st = await lstat(p);
      const link = st.isSymbolicLink() ? await readlink(p) : "";
      out.push(
        `${path.relative(root, p)} ${st.mode.toString(8)} ${st.isDirectory() ? Math.round(st.mtimeMs) : st.size} ${link}`,
      );
      if (st.isDirectory()) await walk(p);
    }
  };
  await walk(root);
  return out.sort();
}

/**
 * Asserts that two {@link treeListing}s are equal, letting a directory's mtime differ by at most 1 ms: kiln
 * restores directory times with Node's utimes, which takes seconds as a double (an error below a
 * microsecond), and the listing rounds to milliseconds, so a time just at a half millisecond can flip.
 */
export function assertSameTree(actual: readonly string[], expected: readonly string[]): void {
  const near = actual.map((line, i) => {
    const want = expected[i];
    if (want === undefined) return line;
    const [p, mode, t, ...rest] = line.split(" ");
    const [wp, wmode, wt, ...wrest] = want.split(" ");
    const dir = mode?.startsWith("4") === true;
    const close = Math.abs(Number(t) - Number(wt)) <= 1;
    return dir && p === wp && mode === wmode && close && rest.join(" ") === wrest.join(" ") ? want : line;
  });
  assert.deepEqual(near, expected);
}
