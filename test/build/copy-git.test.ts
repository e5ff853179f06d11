import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { lstat, readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { type TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";
import { sh, writeTree } from "../integration/helpers.js";
import { buildToLayout, startGitServer, unpackLayout, type FileServer } from "./copy-support.js";
import { startBusyboxRegistry } from "../support/busybox-registry.js";
import { startFaultProxy } from "../support/fault-proxy.js";

// ADD <git URL>: a real repository made with git, served by `git http-backend` on loopback.
describe("ADD from a git repository", () => {
  let reg: TestRegistry;
  let base: string;
  let work: string;
  let git: FileServer;
  let first: string;

  before(async () => {
    ({ reg, base } = await startBusyboxRegistry());
    work = await tempDir("copy-git");
    const src = path.join(work, "src");
    await writeTree(src, { README: "v1\n", "sub/inner.txt": "inner v1\n", "run.sh": ["#!/bin/sh\n", 0o755] });
    const g = (...args: string[]) =>
      sh("git", ["-c", "user.name=t", "-c", "user.email=t@e", "-c", "init.defaultBranch=main", ...args], { cwd: src });
    await g("init", "-q");
    await g("add", ".");
    await g("commit", "-q", "-m", "one");
    await g("tag", "v1");
    first = (await g("rev-parse", "HEAD")).trim();
    await writeTree(src, { README: "v2\n", "sub/inner.txt": "inner v2\n" });
    await g("commit", "-q", "-am", "two");
    await sh("git", ["clone", "-q", "--bare", src, path.join(work, "repos", "r.git")]);
    git = await startGitServer(path.join(work, "repos"));
  });
  after(async () => {
    await git?.stop();
    await reg?.stop();
    if (work) await removeDir(work);
  });

  test("branches, tags, commits, subdirs and --keep-git-dir", async () => {
    const ctx = path.join(work, "ctx");
    const repo = `${git.url}/r.git`;
    await writeTree(ctx, {
      Dockerfile: [
        `FROM ${base}`,
        `ADD ${repo} /g/`,
        `ADD --keep-git-dir=true ${repo}#v1 /gk/`,
        `ADD ${repo}#main:sub /gs/`,
        `ADD --chown=1000:1000 ${repo}#${first} /gc`,
        "",
      ].join("\n"),
    });
    const { r, layout } = await buildToLayout(ctx, path.join(work, "out"));
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const root = await unpackLayout(layout, path.join(work, "unpack"));
    const read = (p: string) => readFile(path.join(root, p), "utf8");
    assert.equal(await read("g/README"), "v2\n");
    assert.deepEqual((await readdir(path.join(root, "g"))).sort(), ["README", "run.sh", "sub"]);
    assert.equal((await lstat(path.join(root, "g/run.sh"))).mode & 0o777, 0o755);
    assert.equal((await lstat(path.join(root, "g/README"))).uid, 0);
    assert.equal(await read("gk/README"), "v1\n");
    assert.ok((await lstat(path.join(root, "gk/.git"))).isDirectory());
    assert.equal(await read("gs/inner.txt"), "inner v2\n");
    assert.equal(await read("gc/README"), "v1\n");
    const gc = await lstat(path.join(root, "gc/sub/inner.txt"));
    assert.equal(`${gc.uid}:${gc.gid}`, "1000:1000");
  });

  test("the clone goes through HTTP_PROXY (a CONNECT tunnel to the git server); NO_PROXY bypasses it", async () => {
    const proxy = await startFaultProxy({ target: reg.host });
    try {
      const ctx = path.join(work, "ctx-proxy");
      await writeTree(ctx, { Dockerfile: `FROM scratch\nADD ${git.url}/r.git#v1 /g/\n` });
      const host = git.url.replace(/^http:\/\//, "");
      const env = {
        HTTP_PROXY: `http://${proxy.host}`,
        http_proxy: undefined,
        NO_PROXY: undefined,
        no_proxy: undefined,
      };
      const { r, layout } = await buildToLayout(ctx, path.join(work, "out-proxy"), [], env);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.ok(
        proxy.tunnels.length > 0 && proxy.tunnels.every((t) => t === host),
        `tunnels: ${proxy.tunnels.join(", ")}`,
      );
      const root = await unpackLayout(layout, path.join(work, "unpack-proxy"));
      assert.equal(await readFile(path.join(root, "g/README"), "utf8"), "v1\n");

      const through = proxy.tunnels.length;
      const direct = await buildToLayout(ctx, path.join(work, "out-direct"), [], { ...env, NO_PROXY: "127.0.0.1" });
      assert.equal(direct.r.code, 0, direct.r.stderr + direct.r.stdout);
      assert.equal(proxy.tunnels.length, through, "NO_PROXY: no tunnel");
    } finally {
      await proxy.stop();
    }
  });

  test("query options (Dockerfile 1.18) and checksums pin what is checked out", async () => {
    const ctx = path.join(work, "ctx-query");
    const repo = `${git.url}/r.git`;
    await writeTree(ctx, {
      Dockerfile: [
        `FROM ${base}`,
        `ADD ${repo}?tag=v1&subdir=sub&checksum=${first.slice(0, 12)} /qt/`,
        `ADD ${repo}?branch=main&keep-git-dir=true /qb/`,
        `ADD --checksum=${first} ${repo}#v1 /fc/`,
        `ADD --checksum=${first.toUpperCase()} ${repo}?commit=${first}&ref=v1 /both/`,
        "",
      ].join("\n"),
    });
    const { r, layout } = await buildToLayout(ctx, path.join(work, "out-query"));
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const root = await unpackLayout(layout, path.join(work, "unpack-query"));
    const read = (p: string) => readFile(path.join(root, p), "utf8");
    assert.deepEqual(await readdir(path.join(root, "qt")), ["inner.txt"]);
    assert.equal(await read("qt/inner.txt"), "inner v1\n");
    assert.equal(await read("qb/README"), "v2\n");
    assert.ok((await lstat(path.join(root, "qb/.git"))).isDirectory(), "?keep-git-dir=true keeps .git");
    assert.equal(await read("fc/README"), "v1\n");
    assert.equal(await read("both/README"), "v1\n");
  });

  test("a checksum the ref does not resolve to fails the build and names both commits", async () => {
    const repo = `${git.url}/r.git`;
    const head = (await sh("git", ["--git-dir", path.join(work, "repos", "r.git"), "rev-parse", "main"])).trim();
    for (const [name, line] of [
      ["flag", `ADD --checksum=${first} ${repo}#main /x/`],
      ["query", `ADD ${repo}?branch=main&checksum=${first.slice(0, 10)} /x/`],
    ] as const) {
      const ctx = path.join(work, `ctx-mismatch-${name}`);
      await writeTree(ctx, { Dockerfile: `FROM ${base}\n${line}\n` });
      const { r } = await buildToLayout(ctx, path.join(work, `out-mismatch-${name}`));
      assert.notEqual(r.code, 0, name);
      assert.match(r.stderr, /Dockerfile:2/, name);
      assert.match(r.stderr, new RegExp(`expected commit ${first.slice(0, 10)}`), name);
      assert.match(r.stderr, new RegExp(`resolved to ${head}`), name);
    }
    // A --checksum that is not a commit hash is refused before anything is cloned.
    const ctx = path.join(work, "ctx-bad-sum");
    await writeTree(ctx, { Dockerfile: `FROM ${base}\nADD --checksum=sha256:${"a".repeat(64)} ${repo} /x/\n` });
    const { r } = await buildToLayout(ctx, path.join(work, "out-bad-sum"));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /must be a commit hash/);
  });

  test("submodules are checked out unless ?submodules=false", async () => {
    const lib = path.join(work, "lib-wt");
    const app = path.join(work, "app-wt");
    const g = (cwd: string, ...args: string[]) =>
      sh("git", ["-c", "user.name=t", "-c", "user.email=t@e", "-c", "init.defaultBranch=main", ...args], { cwd });
    await writeTree(lib, { "lib.txt": "lib\n" });
    await g(lib, "init", "-q");
    await g(lib, "add", ".");
    await g(lib, "commit", "-q", "-m", "lib");
    await sh("git", ["clone", "-q", "--bare", lib, path.join(work, "repos", "lib.git")]);
    const libSha = (await g(lib, "rev-parse", "HEAD")).trim();
    await writeTree(app, {
      "app.txt": "app\n",
      ".gitmodules": '[submodule "lib"]\n\tpath = vendor/lib\n\turl = ../lib.git\n',
    });
    await g(app, "init", "-q");
    await g(app, "update-index", "--add", "--cacheinfo", `160000,${libSha},vendor/lib`);
    await g(app, "add", "app.txt", ".gitmodules");
    await g(app, "commit", "-q", "-m", "app");
    await sh("git", ["clone", "-q", "--bare", app, path.join(work, "repos", "app.git")]);
    const ctx = path.join(work, "ctx-sub");
    const repo = `${git.url}/app.git`;
    await writeTree(ctx, { Dockerfile: `FROM ${base}\nADD ${repo} /with/\nADD ${repo}?submodules=false /without/\n` });
    const { r, layout } = await buildToLayout(ctx, path.join(work, "out-sub"));
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const root = await unpackLayout(layout, path.join(work, "unpack-sub"));
    assert.equal(await readFile(path.join(root, "with/vendor/lib/lib.txt"), "utf8"), "lib\n");
    assert.equal(await readFile(path.join(root, "without/app.txt"), "utf8"), "app\n");
    await assert.rejects(lstat(path.join(root, "without/vendor/lib/lib.txt")), { code: "ENOENT" });
  });

  test("a missing repository names the URL", async () => {
    const ctx = path.join(work, "ctx-missing");
    await writeTree(ctx, { Dockerfile: `FROM ${base}\nADD ${git.url}/nope.git /x/\n` });
    const { r } = await buildToLayout(ctx, path.join(work, "out-missing"));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /nope\.git/);
    assert.match(r.stderr, /Dockerfile:2/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });
});
