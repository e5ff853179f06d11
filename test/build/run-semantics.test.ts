import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { runKiln } from "../support/kiln-cli.js";
import { type TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";
import { unpackWithUmoci, writeTree } from "../integration/helpers.js";
import { startBusyboxRegistry } from "../support/busybox-registry.js";

/** Host processes whose command line contains `marker` (pgrep -f), excluding pgrep itself. */
function pgrep(marker: string): Promise<string> {
  return new Promise((resolve) => execFile("pgrep", ["-af", marker], (_e, stdout) => resolve(stdout.trim())));
}

// RUN's environment and identity as Docker gives them, in a real build: USER by name, uid, uid:gid
// and name:group with supplementary groups from /etc/group, HOME from /etc/passwd, the default PATH,
// ARGs in scope, SHELL, WORKDIR, exit code, and processes left behind killed at the step's end.
describe("RUN semantics", () => {
  let reg: TestRegistry;
  let base: string;
  let work: string;
  before(async () => {
    ({ reg, base } = await startBusyboxRegistry());
    work = await tempDir("run-semantics");
  });
  after(async () => {
    await reg?.stop();
    if (work) await removeDir(work);
  });

  test("users, groups, HOME, PATH, ARGs, SHELL, WORKDIR and leftover processes", async () => {
    const ctx = path.join(work, "ctx");
    const marker = `98765${process.pid}`;
    await writeTree(ctx, {
      Dockerfile: [
        "ARG BASE",
        "FROM ${BASE}",
        "RUN echo 'app:x:1234:2345:App:/home/app:/bin/sh' >> /etc/passwd && " +
          "echo 'appgrp:x:2345:' >> /etc/group && echo 'extra:x:3456:app,other' >> /etc/group && " +
          "echo 'other:x:4567:' >> /etc/group && mkdir -p /out && chmod 777 /out",
        "ARG VERSION=1.2",
        "USER app",
        'RUN echo "$(id -u):$(id -g):$(id -G):$HOME:$PATH:$VERSION" > /out/by-name.txt',
        "USER app:other",
        'RUN echo "$(id -u):$(id -g):$(id -G)" > /out/name-group.txt',
        "USER 4321",
        'RUN echo "$(id -u):$(id -g):$HOME" > /out/uid-only.txt',
        "USER 4321:999",
        'RUN echo "$(id -u):$(id -g)" > /out/uid-gid.txt',
        "USER root",
        'SHELL ["/bin/sh", "-e", "-c"]',
        "WORKDIR /w/sub",
        "RUN pwd > /out/pwd.txt && echo $0 > /out/shell.txt",
        `RUN sleep ${marker} > /dev/null 2>&1 &`,
        "",
      ].join("\n"),
    });
    const ref = `${reg.host}/semantics:v1`;
    const r = await runKiln([
      "build",
      "--context",
      ctx,
      "--destination",
      ref,
      "--insecure",
      "--insecure-pull",
      "--build-arg",
      `BASE=${base}`,
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(await pgrep(`sleep ${marker}`), "", "a background process of a RUN survived its step");
    const rootfs = await unpackWithUmoci(ref, path.join(work, "u"));
    const read = (p: string) => readFile(path.join(rootfs, "out", p), "utf8");
    assert.equal(
      await read("by-name.txt"),
      "1234:2345:2345 3456:/home/app:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:1.2\n",
    );
    // An explicit group replaces the /etc/group supplementary groups (runc's GetExecUser, BuildKit).
    assert.equal(await read("name-group.txt"), "1234:4567:4567\n");
    // Docker (runc): a uid without a passwd entry runs with gid 0 and HOME=/.
    assert.equal(await read("uid-only.txt"), "4321:0:/\n");
    assert.equal(await read("uid-gid.txt"), "4321:999\n");
    assert.equal(await read("pwd.txt"), "/w/sub\n");
    assert.equal(await read("shell.txt"), "/bin/sh\n");
  });
});
