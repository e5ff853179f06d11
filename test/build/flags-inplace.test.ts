import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { unpackWithUmoci, writeTree } from "../integration/helpers.js";
import { startBusyboxRegistry } from "../support/busybox-registry.js";
import { buildInJail, makeJail } from "../support/in-place-jail.js";
import type { TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";
import { pathExists } from "../../src/common/path-exists.js";

// In-place builds run only inside a namespace jail (test/support/in-place-jail.ts), never on this
// machine's own root.
const canJail = process.getuid?.() === 0;

describe("in-place flags inside a namespace jail", { skip: canJail ? false : "needs root" }, () => {
  let reg: TestRegistry;
  let base: string;
  let work: string;
  before(async () => {
    ({ reg, base } = await startBusyboxRegistry());
    work = await tempDir("flags-inplace");
  });
  after(async () => {
    await reg?.stop();
    if (work) await removeDir(work);
  });

  /** A jail holding some files of "the container" itself, and a context with `dockerfile`. */
  async function jailWith(name: string, dockerfile: string[]): Promise<string> {
    const jail = await makeJail(path.join(work, name));
    await writeTree(jail, {
      "etc/jail-own.txt": "the container's own file\n",
      "kaniko/ctx/Dockerfile": [...dockerfile, ""].join("\n"),
      "kaniko/ctx/payload.txt": "payload\n",
    });
    return jail;
  }
  const common = ["--context", "/kaniko/ctx", "--insecure", "--insecure-pull", "--isolation=in-place"];

  test("--pre-cleanup, VOLUME, COPY into an ignored path, --cleanup with --preserve-context", async () => {
    const jail = await jailWith("j1", [
      `FROM ${base}`,
      "COPY payload.txt /kaniko/overwritten.txt",
      "VOLUME /vol",
      "RUN test ! -e /etc/jail-own.txt && mkdir -p /vol && echo v > /vol/inside && echo o > /outside",
      "COPY payload.txt /vol/copied.txt",
    ]);
    const ref = `${reg.host}/inplace-flags:one`;
    const r = await buildInJail(jail, [
      ...common,
      "--destination",
      ref,
      "--pre-cleanup",
      "--preserve-context",
      "--cleanup",
    ]);
    assert.equal(r.code, 0, r.output);
    // COPY never writes into kiln's state dir (or any ignored path): skipped with a warning.
    assert.match(r.output, /COPY skipped \/kaniko\/overwritten\.txt: on the in-place ignore list/);
    assert.equal(await pathExists(path.join(jail, "kaniko/overwritten.txt")), false);
    const rootfs = await unpackWithUmoci(ref, path.join(work, "u1"));
    assert.equal(await readFile(path.join(rootfs, "outside"), "utf8"), "o\n");
    // What a RUN writes below a VOLUME is left out (kaniko); COPY into it stays (kaniko, legacy Docker).
    assert.equal(await pathExists(path.join(rootfs, "vol")), true);
    assert.equal(await pathExists(path.join(rootfs, "vol/inside")), false);
    assert.equal(await readFile(path.join(rootfs, "vol/copied.txt"), "utf8"), "payload\n");
    assert.equal(await pathExists(path.join(rootfs, "kaniko")), false);
    assert.equal(await pathExists(path.join(rootfs, "etc/jail-own.txt")), false);
    // --cleanup removed the build; --preserve-context put the container's own files back.
    assert.equal(await pathExists(path.join(jail, "outside")), false);
    assert.equal(await pathExists(path.join(jail, "bin/busybox")), false);
    assert.equal(await readFile(path.join(jail, "etc/jail-own.txt"), "utf8"), "the container's own file\n");
    assert.equal(await pathExists(path.join(jail, ".dockerenv")), true);
  });

  test("--preserve-context keeps the container's files under every stage without leaking them into layers", async () => {
    const jail = await jailWith("j2", [
      `FROM ${base} AS a`,
      "RUN test -e /etc/jail-own.txt && echo a > /a.txt",
      `FROM ${base}`,
      "COPY --from=a /a.txt /copied.txt",
      "RUN test -e /etc/jail-own.txt && test ! -e /a.txt && echo b > /b.txt",
    ]);
    const ref = `${reg.host}/inplace-flags:two`;
    const r = await buildInJail(jail, [...common, "--destination", ref, "--preserve-context"]);
    assert.equal(r.code, 0, r.output);
    const rootfs = await unpackWithUmoci(ref, path.join(work, "u2"));
    assert.equal(await readFile(path.join(rootfs, "copied.txt"), "utf8"), "a\n");
    assert.equal(await readFile(path.join(rootfs, "b.txt"), "utf8"), "b\n");
    assert.equal(await pathExists(path.join(rootfs, "etc/jail-own.txt")), false, "unchanged preserved file leaked");
    assert.equal(await pathExists(path.join(rootfs, ".dockerenv")), false);
  });

  test("--materialize leaves the final stage's filesystem in / even when every step was a cache hit", async () => {
    const jail = await jailWith("j3", [`FROM ${base}`, "RUN echo a > /a.txt"]);
    const cached = [...common, "--no-push", "--cache=true", "--cache-repo=oci:/kaniko/cache"];
    const r1 = await buildInJail(jail, cached);
    assert.equal(r1.code, 0, r1.output);
    assert.equal(await readFile(path.join(jail, "a.txt"), "utf8"), "a\n");
    await rm(path.join(jail, "a.txt"));
    // The first build replaced "/" with the image, /.dockerenv (the jail's container marker) included.
    const marker = (): Promise<void> => writeFile(path.join(jail, ".dockerenv"), "");
    await marker();
    // A full cache hit never needs the filesystem: "/" is left as it was.
    const r2 = await buildInJail(jail, cached);
    assert.equal(r2.code, 0, r2.output);
    assert.equal(await pathExists(path.join(jail, "a.txt")), false, r2.output);
    await marker();
    const r3 = await buildInJail(jail, [...cached, "--materialize"]);
    assert.equal(r3.code, 0, r3.output);
    assert.equal(await readFile(path.join(jail, "a.txt"), "utf8"), "a\n");
    assert.equal(await pathExists(path.join(jail, "bin/busybox")), true);
  });
});
