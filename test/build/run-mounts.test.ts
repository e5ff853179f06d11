import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { runKiln } from "../support/kiln-cli.js";
import { type TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";
import { sh, skopeoInspect, unpackWithUmoci, writeTree } from "../integration/helpers.js";
import { startBusyboxRegistry } from "../support/busybox-registry.js";
import { pathExists } from "../../src/common/path-exists.js";

const SECRET = "s3cr3t-Value-42";

// RUN --mount of every type, shebang heredocs and --network, in real builds pushed to a real registry
// and unpacked with umoci (not kiln). Needs root (chroot + mount namespaces) or user namespaces.
describe("RUN --mount, heredoc scripts and --network in real builds", () => {
  let reg: TestRegistry;
  let base: string;
  let work: string;
  let agent: Server;
  before(async () => {
    ({ reg, base } = await startBusyboxRegistry());
    work = await tempDir("run-mounts");
    agent = createServer(() => {});
    await new Promise<void>((r) => agent.listen(path.join(work, "agent.sock"), r));
  });
  after(async () => {
    await new Promise<void>((r) => (agent ? agent.close(() => r()) : r()));
    await reg?.stop();
    if (work) await removeDir(work);
  });

  const build = (ctx: string, ref: string, extra: string[] = []) =>
    runKiln(
      [
        "build",
        "--context",
        ctx,
        "--destination",
        ref,
        "--insecure",
        "--insecure-pull",
        "--kaniko-dir",
        path.join(work, "state"),
        "--build-arg",
        `BASE=${base}`,
        "--secret",
        "id=tok,src=" + path.join(work, "tok.txt"),
        "--secret",
        "id=envtok,env=KILN_TEST_SECRET",
        ...extra,
      ],
      { env: { KILN_TEST_SECRET: SECRET, SSH_AUTH_SOCK: path.join(work, "agent.sock") } },
    );

  test("bind, cache, tmpfs, secret, ssh mounts work and leave nothing in the image", async () => {
    await writeTree(work, { "tok.txt": `${SECRET}\n` });
    const ctx = path.join(work, "ctx");
    await writeTree(ctx, {
      Dockerfile: [
        "ARG BASE",
        "FROM ${BASE}",
        "RUN --mount=type=bind,source=src,target=/mnt/src cat /mnt/src/a.txt > /bind.txt && " +
          "ls /mnt/src > /bind-ls.txt && (touch /mnt/src/x 2>/dev/null && echo writable || echo read-only) > /bind-ro.txt",
        "RUN --mount=type=bind,source=src,target=/mnt/rw,rw touch /mnt/rw/new && echo rw-ok > /bind-rw.txt",
        "RUN --mount=type=cache,target=/var/cache/app,id=counter,uid=1000,mode=0700 " +
          "n=$(cat /var/cache/app/n 2>/dev/null || echo 0); echo $((n+1)) > /var/cache/app/n; echo $n > /cache-before.txt; " +
          "stat -c '%u %a' /var/cache/app > /cache-owner.txt",
        "RUN --mount=type=cache,target=/c2,sharing=locked echo locked > /c2/l && cat /c2/l > /cache-locked.txt",
        "RUN --mount=type=tmpfs,target=/scratch grep ' /scratch ' /proc/mounts | cut -d' ' -f3 > /tmpfs.txt && touch /scratch/t",
        "RUN --mount=type=secret,id=tok cat /run/secrets/tok && wc -c < /run/secrets/tok > /secret-len.txt && " +
          "stat -c '%a' /run/secrets/tok > /secret-mode.txt",
        'RUN --mount=type=secret,id=envtok,env=TOK,required test "${#TOK}" -gt 4 && echo env-ok > /secret-env.txt',
        "RUN --mount=type=secret,id=absent ls /run/secrets > /secret-absent.txt 2>&1 || echo none > /secret-absent.txt",
        'RUN --mount=type=ssh test -S "$SSH_AUTH_SOCK" && echo "$SSH_AUTH_SOCK" > /ssh.txt',
        "RUN <<EOF",
        "#!/bin/sh -e",
        'echo "script=$0 args=$#" > /heredoc.txt',
        "EOF",
        "RUN --network=none cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' > /netnone.txt",
        "",
      ].join("\n"),
      ".dockerignore": "src/ignored.log\n",
      "src/a.txt": "from-context\n",
      "src/ignored.log": "must not be visible\n",
    });
    const ref = `${reg.host}/mounts:v1`;
    const r = await build(ctx, ref);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const all = r.stdout + r.stderr;
    assert.ok(!all.includes(SECRET), "the secret value appears in the log");
    assert.ok(all.includes("***"), "the secret's cat output is redacted");

    const rootfs = await unpackWithUmoci(ref, path.join(work, "u1"));
    const read = (p: string) => readFile(path.join(rootfs, p), "utf8");
    assert.equal(await read("bind.txt"), "from-context\n");
    assert.equal(await read("bind-ls.txt"), "a.txt\n", ".dockerignore applies to bind mounts");
    assert.equal(await read("bind-ro.txt"), "read-only\n");
    assert.equal(await read("bind-rw.txt"), "rw-ok\n");
    assert.equal(await read("cache-before.txt"), "0\n");
    assert.equal(await read("cache-owner.txt"), "1000 700\n");
    assert.equal(await read("cache-locked.txt"), "locked\n");
    assert.equal(await read("tmpfs.txt"), "tmpfs\n");
    assert.equal(await read("secret-len.txt"), `${SECRET.length + 1}\n`);
    assert.equal(await read("secret-mode.txt"), "400\n");
    assert.equal(await read("secret-env.txt"), "env-ok\n");
    assert.equal(await read("secret-absent.txt"), "none\n");
    assert.equal(await read("ssh.txt"), "/run/buildkit/ssh_agent.0\n");
    assert.equal(await read("heredoc.txt"), "script=/.kiln-heredoc-script args=0\n");
    assert.equal(await read("netnone.txt"), "lo\n");
    // Mount targets and their parents kiln created are not in the image; the context stays untouched.
    for (const p of ["mnt", "var/cache/app", "c2", "scratch", "run/secrets", "run/buildkit", ".kiln-heredoc-script"]) {
      assert.equal(await pathExists(path.join(rootfs, p)), false, p);
    }
    assert.equal(await pathExists(path.join(ctx, "src", "new")), false, "rw bind wrote into the context");
    // The secret is in no layer and not in the config.
    const grep = await sh("grep", ["-rlF", SECRET, rootfs]).catch(() => "");
    assert.equal(grep, "");
    const config = JSON.stringify(await skopeoInspect(ref, "--config"));
    assert.ok(!config.includes(SECRET));

    // The cache mount persists across builds (same --kaniko-dir).
    const r2 = await build(ctx, `${reg.host}/mounts:v2`);
    assert.equal(r2.code, 0, r2.stderr + r2.stdout);
    const rootfs2 = await unpackWithUmoci(`${reg.host}/mounts:v2`, path.join(work, "u2"));
    assert.equal(await readFile(path.join(rootfs2, "cache-before.txt"), "utf8"), "1\n");
    const caches = await readdir(path.join(work, "state", "cache-mounts"));
    assert.ok(caches.length >= 2, caches.join(","));
  });

  test("bind mounts from a stage and from an image, read-only by default", async () => {
    const ctx = path.join(work, "ctx-from");
    await writeTree(ctx, {
      Dockerfile: [
        "ARG BASE",
        "FROM ${BASE} AS tools",
        "RUN mkdir /tools && echo tool > /tools/t.txt",
        "FROM ${BASE}",
        "RUN --mount=type=bind,from=tools,source=/tools,target=/t cat /t/t.txt > /from-stage.txt && " +
          "(touch /t/x 2>/dev/null && echo writable || echo read-only) > /from-stage-ro.txt",
        `RUN --mount=type=bind,from=${base},source=/bin,target=/imgbin test -e /imgbin/sh && echo yes > /from-image.txt`,
        "",
      ].join("\n"),
    });
    const ref = `${reg.host}/mounts:from`;
    const r = await build(ctx, ref);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const rootfs = await unpackWithUmoci(ref, path.join(work, "u-from"));
    const read = (p: string) => readFile(path.join(rootfs, p), "utf8");
    assert.equal(await read("from-stage.txt"), "tool\n");
    assert.equal(await read("from-stage-ro.txt"), "read-only\n");
    assert.equal(await read("from-image.txt"), "yes\n");
    assert.equal(await pathExists(path.join(rootfs, "tools")), false);
    assert.equal(await pathExists(path.join(rootfs, "t")), false);
    assert.equal(await pathExists(path.join(rootfs, "imgbin")), false);
  });

  test("a required secret that was not given fails the build with a clear message", async () => {
    const ctx = path.join(work, "ctx-missing");
    await writeTree(ctx, {
      Dockerfile: "ARG BASE\nFROM ${BASE}\nRUN --mount=type=secret,id=nope,required true\n",
    });
    const r = await build(ctx, `${reg.host}/mounts:missing`);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /secret nope: not found/);
  });

  test("a failing RUN's exit code is propagated and stdin is closed", async () => {
    const ctx = path.join(work, "ctx-exit");
    await writeTree(ctx, {
      Dockerfile: "ARG BASE\nFROM ${BASE}\nRUN test \"$(cat)\" = '' && exit 7\n",
    });
    const r = await build(ctx, `${reg.host}/mounts:exit`, []);
    assert.equal(r.code, 7, r.stderr + r.stdout);
  });
});
