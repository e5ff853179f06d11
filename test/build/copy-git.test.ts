import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { lstat, readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { type TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";
import { sh, writeTree } from "../integration/helpers.js";
import { buildToLayout, startGitServer, unpackLayout, type FileServer } from "./copy-support.js";
import { startBusyboxRegistry } from "../support/busybox-registry.js";

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
