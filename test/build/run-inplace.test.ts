import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFile, lstat, mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { type TestRegistry } from "../support/registry.js";
import { removeDir, repoRoot, tempDir } from "../support/tmp.js";
import { sh, unpackWithUmoci } from "../integration/helpers.js";
import { startBusyboxRegistry } from "../support/busybox-registry.js";

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

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

// The in-place back-end (kaniko's model) must never run on this machine's own root: each build runs
// in a jail — a private mount + pid namespace chrooted into a temporary directory laid out like the
// kiln image (node, its libraries and kiln under /kaniko; /.dockerenv marks it as a container). The
// base image then replaces the jail's /lib and /usr while kiln keeps running from /kaniko.
const canJail = process.getuid?.() === 0;

describe("in-place builds inside a namespace jail", { skip: canJail ? false : "needs root" }, () => {
  let reg: TestRegistry;
  let base: string;
  let work: string;
  before(async () => {
    ({ reg, base } = await startBusyboxRegistry());
    work = await tempDir("inplace");
  });
  after(async () => {
    await reg?.stop();
    if (work) await removeDir(work);
  });

  /** Creates a jail whose /kaniko holds node + its libraries, with some pre-existing root content. */
  async function makeJail(name: string): Promise<string> {
    const jail = path.join(work, name);
    for (const d of [
      "kaniko/bin",
      "kaniko/lib",
      "kaniko/kiln",
      "kaniko/tmp",
      "kaniko/ctx",
      "proc",
      "dev",
      "lib",
      "usr/lib",
    ])
      await mkdir(path.join(jail, d), { recursive: true });
    await copyFile(process.execPath, path.join(jail, "kaniko/bin/node"));
    for (const lib of await sharedLibs(process.execPath))
      await copyFile(lib, path.join(jail, "kaniko/lib", path.basename(lib)));
    await writeFile(path.join(jail, ".dockerenv"), "");
    await writeFile(path.join(jail, "lib/old-library.so"), "replaced by the base image\n");
    await writeFile(path.join(jail, "usr/lib/old"), "replaced by the base image\n");
    return jail;
  }

  /** Runs `kiln build …` chrooted into `jail` (kiln's repo bound read-only at /kaniko/kiln). */
  async function buildInJail(jail: string, args: string[]): Promise<{ code: number; output: string }> {
    const loader = (await readdir(path.join(jail, "kaniko/lib"))).find((n) => n.startsWith("ld-linux"));
    assert.ok(loader, "no dynamic loader in ldd's output");
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

  test("RUN runs on the jail's own root; the image holds the changes, never /kaniko", async () => {
    const jail = await makeJail("jail1");
    await writeFile(
      path.join(jail, "kaniko/ctx/Dockerfile"),
      [
        `FROM ${base}`,
        "RUN echo hello > /hello.txt && ls /kaniko > /dev/null && test ! -e /lib/old-library.so",
        "RUN rm /bin/ls && mkdir -p /var/run/x && echo skipped > /var/run/x/f",
        "USER 1000:1000",
        "RUN id -u > /tmp/uid.txt",
        "",
      ].join("\n"),
    );
    const ref = `${reg.host}/inplace:v1`;
    const r = await buildInJail(jail, [
      "--context",
      "/kaniko/ctx",
      "--destination",
      ref,
      "--insecure",
      "--insecure-pull",
      "--isolation=in-place",
    ]);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /in-place/);
    // The jail's root is now the built filesystem; its runtime under /kaniko survived.
    assert.equal(await readFile(path.join(jail, "hello.txt"), "utf8"), "hello\n");
    assert.equal(await exists(path.join(jail, "lib/old-library.so")), false);
    assert.equal(await exists(path.join(jail, "kaniko/bin/node")), true);
    const rootfs = await unpackWithUmoci(ref, path.join(work, "u1"));
    assert.equal(await readFile(path.join(rootfs, "hello.txt"), "utf8"), "hello\n");
    assert.equal(await readFile(path.join(rootfs, "tmp/uid.txt"), "utf8"), "1000\n");
    assert.equal(await exists(path.join(rootfs, "bin/ls")), false, "deleted file is a whiteout");
    assert.equal(await exists(path.join(rootfs, "bin/sh")), true);
    for (const p of ["kaniko", ".dockerenv", "var/run/x", "proc/self", "dev/null"])
      assert.equal(await exists(path.join(rootfs, p)), false, p);
  });

  test("multi-stage in place: COPY --from an earlier stage, FROM a stage, --cleanup", async () => {
    const jail = await makeJail("jail2");
    await writeFile(
      path.join(jail, "kaniko/ctx/Dockerfile"),
      [
        `FROM ${base} AS builder`,
        "RUN echo built > /artifact.txt",
        `FROM ${base} AS middle`,
        "RUN echo middle > /middle.txt",
        "FROM middle",
        "COPY --from=builder /artifact.txt /copied.txt",
        "RUN cat /copied.txt /middle.txt > /both.txt && test ! -e /artifact.txt",
        "",
      ].join("\n"),
    );
    const ref = `${reg.host}/inplace:multi`;
    const r = await buildInJail(jail, [
      "--context",
      "/kaniko/ctx",
      "--destination",
      ref,
      "--insecure",
      "--insecure-pull",
      "--isolation=in-place",
      "--cleanup",
    ]);
    assert.equal(r.code, 0, r.output);
    const rootfs = await unpackWithUmoci(ref, path.join(work, "u2"));
    assert.equal(await readFile(path.join(rootfs, "both.txt"), "utf8"), "built\nmiddle\n");
    assert.equal(await exists(path.join(rootfs, "artifact.txt")), false);
    // --cleanup: only the protected paths are left in the jail.
    const left = await readdir(jail);
    for (const gone of ["bin", "lib", "usr", "both.txt", "copied.txt"]) assert.ok(!left.includes(gone), gone);
    // /etc stays as the parent of the protected /etc/mtab, emptied of everything else.
    if (left.includes("etc"))
      assert.deepEqual(
        (await readdir(path.join(jail, "etc"))).filter((n) => n !== "mtab"),
        [],
      );
    assert.ok(left.includes("kaniko"));
  });
});
