/**
 * kiln-exec `--list-upper`: after a RUN on an overlay, the helper's listing of the upper directory must
 * hold exactly what Node's own lstat walk and getfattr read there (the overlay snapshot's fallback).
 * Needs root, overlay mounts, native/kiln-exec, /bin/busybox and getfattr/setfattr (skipped otherwise).
 */
import * as assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import type { BigIntStats } from "node:fs";
import { existsSync, lstatSync, readFileSync, readdirSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { parseUpperListing } from "../../src/fs/snapshot/upper-listing.js";
import { readXattrsMatching } from "../../src/fs/xattr.js";
import { repoRoot, removeDir, tempDir } from "../support/tmp.js";

const HELPER = path.join(repoRoot(), "native", "kiln-exec");
/** `security.capability` v2 with cap_net_bind_service permitted and effective (what setcap writes). */
const CAP_NET_BIND = "0x0100000200040000000000000000000000000000";
const NAMES = ["name with space", "new\nline", "ünï€😀", "tab\there"];
const SCRIPT = [
  "cd /",
  "echo hi > /f",
  "ln /f /hard",
  "ln -s /f /sym",
  "mkfifo /fifo",
  "mknod /null c 1 3",
  "rm /etc/gone",
  "rm -rf /d && mkdir -p /d/sub && echo x > /d/sub/new",
  "chmod 0750 /etc/keep",
  "mkdir /names",
  ...NAMES.map((n) => `touch "/names/$(printf '${n.replace(/\n/g, "\\n").replace(/\t/g, "\\t")}')"`),
].join(" && ");

function usable(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root";
  for (const f of [HELPER, "/bin/busybox", "/usr/bin/getfattr", "/usr/bin/setfattr"])
    if (!existsSync(f)) return `${f} is missing`;
  return undefined;
}

/** Every upper entry as Node sees it: container path → lstat, parents before children. */
function nodeWalk(upper: string, rel = ""): [string, BigIntStats][] {
  const out: [string, BigIntStats][] = [];
  for (const name of readdirSync(path.join(upper, rel))) {
    const r = rel === "" ? name : `${rel}/${name}`;
    const st = lstatSync(path.join(upper, r), { bigint: true });
    out.push([`/${r}`, st]);
    if (st.isDirectory()) out.push(...nodeWalk(upper, r));
  }
  return out;
}

test("kiln-exec --list-upper lists the upper exactly as lstat and getfattr see it", async (t) => {
  const skip = usable();
  if (skip !== undefined) {
    t.skip(skip);
    return;
  }
  const dir = await tempDir("kiln-list-upper-");
  try {
    const [lower, upper, work, list] = ["lower", "upper", "work", "upper.list"].map((n) => path.join(dir, n)) as [
      string,
      string,
      string,
      string,
    ];
    for (const d of ["bin", "etc", "d/old"].map((n) => path.join(lower, n))) await mkdir(d, { recursive: true });
    await mkdir(upper);
    await mkdir(work);
    execFileSync("cp", ["/bin/busybox", path.join(lower, "bin", "busybox")]);
    execFileSync(HELPER, ["--root", lower, "--", "/bin/busybox", "--install", "-s", "/bin"]);
    await writeFile(path.join(lower, "etc", "gone"), "gone");
    await writeFile(path.join(lower, "etc", "keep"), "keep");
    await writeFile(path.join(lower, "d", "old", "x"), "x");
    // A file with a capability, as `setcap` in the step leaves it in the upper.
    await writeFile(path.join(upper, "capable"), "cap");
    execFileSync("setfattr", ["-n", "security.capability", "-v", CAP_NET_BIND, path.join(upper, "capable")]);

    const args = ["--mountns", "--root", lower, "--cwd", "/", "--overlay", `${lower}:${upper}:${work}`];
    const run = (extra: string[], script: string): { status: number; stderr: string } => {
      const r = spawnSync(
        HELPER,
        [...args, ...extra, "--", "/bin/busybox", "sh", "-c", `export PATH=/bin; ${script}`],
        {
          encoding: "utf8",
        },
      );
      return { status: r.status ?? -1, stderr: r.stderr };
    };
    const first = run(["--list-upper", list], `${SCRIPT} && exit 7`);
    assert.deepEqual(first, { status: 7, stderr: "" }, "the command's status, nothing said");

    const listed = parseUpperListing(readFileSync(list));
    assert.ok(listed !== undefined, "a well-formed listing");
    assert.equal((lstatSync(list).mode & 0o777).toString(8), "600");
    const walked = nodeWalk(upper);
    assert.deepEqual(listed.entries.map((e) => e.cpath).sort(), walked.map(([p]) => p).sort());
    const seen = new Set<string>();
    for (const e of listed.entries) {
      const parent = path.posix.dirname(e.cpath);
      assert.ok(parent === "/" || seen.has(parent), `${e.cpath} listed after its parent`);
      seen.add(e.cpath);
    }
    for (const want of ["/f", "/hard", "/sym", "/fifo", "/null", "/etc/gone", "/d", "/d/sub/new", "/capable"])
      assert.ok(seen.has(want), want);
    for (const n of NAMES) assert.ok(seen.has(`/names/${n}`), JSON.stringify(n));

    const byPath = new Map(walked);
    for (const e of listed.entries) {
      const st = byPath.get(e.cpath);
      assert.ok(st !== undefined);
      const fields = ["mode", "uid", "gid", "nlink", "size", "rdev", "ino", "dev", "mtimeNs", "ctimeNs", "mtimeMs"];
      for (const f of fields) assert.equal(e.st[f as keyof typeof e.st], st[f as keyof typeof st], `${e.cpath} ${f}`);
      // Listing a directory reads it, which may move its atime on (relatime): lstat now sees the later one.
      if (st.isDirectory()) assert.ok(e.st.atimeMs <= st.atimeMs, `${e.cpath} atime`);
      else assert.equal(e.st.atimeMs, st.atimeMs, `${e.cpath} atime`);
      for (const k of [
        "isFile",
        "isDirectory",
        "isSymbolicLink",
        "isCharacterDevice",
        "isFIFO",
        "isBlockDevice",
      ] as const)
        assert.equal(e.st[k](), st[k](), `${e.cpath} ${k}`);
    }
    const whiteout = listed.entries.find((e) => e.cpath === "/etc/gone");
    assert.ok(whiteout?.st.isCharacterDevice() && whiteout.st.rdev === 0n, "rm leaves a whiteout");

    const hosts = walked
      .filter(([, st]) => !st.isSymbolicLink() && !(st.isCharacterDevice() && st.rdev === 0n))
      .map(([p]) => path.join(upper, p));
    const viaGetfattr = await readXattrsMatching(hosts, "^(trusted\\.overlay\\..*|security\\.capability)$");
    const expected = new Map([...viaGetfattr].map(([h, a]) => ["/" + path.relative(upper, h), a]));
    for (const [p, a] of [...expected]) if (a.size === 0) expected.delete(p);
    assert.deepEqual(listed.attrs, expected);
    assert.equal(listed.attrs.get("/d")?.get("trusted.overlay.opaque")?.toString(), "y", "replaced dir is opaque");
    assert.deepEqual(
      listed.attrs.get("/capable")?.get("security.capability"),
      Buffer.from(CAP_NET_BIND.slice(2), "hex"),
    );
    assert.ok(listed.attrs.has("/etc/keep"), "a copied-up file carries overlay xattrs");

    // The listing file must be new: an existing one is never overwritten, and the RUN's status stands.
    await writeFile(list, "old");
    const again = run(["--list-upper", list], "exit 3");
    assert.equal(again.status, 3);
    assert.match(again.stderr, /^kiln-exec: list-upper: .*upper\.list: File exists\n$/);
    assert.equal(readFileSync(list, "utf8"), "old");
    // A listing that cannot be written does not change the RUN's status either.
    const nowhere = run(["--list-upper", path.join(dir, "missing", "x.list")], "true");
    assert.equal(nowhere.status, 0);
    assert.match(nowhere.stderr, /^kiln-exec: list-upper: .*x\.list: No such file or directory\n$/);
    // Without an overlay there is nothing to list.
    assert.equal(spawnSync(HELPER, ["--list-upper", list, "--", "/bin/true"]).status, 127);
  } finally {
    await removeDir(dir);
  }
});
