import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { type TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";
import { unpackWithUmoci } from "../integration/helpers.js";
import { buildInJail, makeJail as makeJailAt } from "../support/in-place-jail.js";
import { startBusyboxRegistry } from "../support/busybox-registry.js";
import { pathExists } from "../../src/common/path-exists.js";

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

  /** A jail (test/support/in-place-jail.ts) with some pre-existing root content the base image replaces. */
  async function makeJail(name: string): Promise<string> {
    const jail = await makeJailAt(path.join(work, name));
    for (const d of ["lib", "usr/lib"]) await mkdir(path.join(jail, d), { recursive: true });
    await writeFile(path.join(jail, "lib/old-library.so"), "replaced by the base image\n");
    await writeFile(path.join(jail, "usr/lib/old"), "replaced by the base image\n");
    return jail;
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
    assert.equal(await pathExists(path.join(jail, "lib/old-library.so")), false);
    assert.equal(await pathExists(path.join(jail, "kaniko/bin/node")), true);
    const rootfs = await unpackWithUmoci(ref, path.join(work, "u1"));
    assert.equal(await readFile(path.join(rootfs, "hello.txt"), "utf8"), "hello\n");
    assert.equal(await readFile(path.join(rootfs, "tmp/uid.txt"), "utf8"), "1000\n");
    assert.equal(await pathExists(path.join(rootfs, "bin/ls")), false, "deleted file is a whiteout");
    assert.equal(await pathExists(path.join(rootfs, "bin/sh")), true);
    for (const p of ["kaniko", ".dockerenv", "var/run/x", "proc/self", "dev/null"])
      assert.equal(await pathExists(path.join(rootfs, p)), false, p);
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
    assert.equal(await pathExists(path.join(rootfs, "artifact.txt")), false);
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
