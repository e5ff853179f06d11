import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { link, lstat, mkdir, readFile, readdir, readlink, symlink, utimes, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import path from "node:path";
import { type TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";
import { sh, writeTree } from "../integration/helpers.js";
import { buildToLayout, layerListings, startFileServer, unpackLayout, type FileServer } from "./copy-support.js";
import { startBusyboxRegistry } from "../support/busybox-registry.js";

// COPY and ADD with BuildKit's semantics, built for real on busybox (pulled from a real registry),
// written as an OCI layout and unpacked with skopeo + umoci (not kiln) before checking the tree.
const MTIME = new Date("2021-03-04T05:06:07Z");
const LAST_MODIFIED = new Date("2020-01-02T03:04:05Z");

describe("COPY/ADD matrix", () => {
  let reg: TestRegistry;
  let base: string;
  let work: string;
  let http: FileServer;
  let tgz: Buffer;

  before(async () => {
    ({ reg, base } = await startBusyboxRegistry());
    work = await tempDir("copy-matrix");
    // Archive fixtures made by GNU tar (not kiln): an implied parent dir, a hardlink, a symlink.
    const src = path.join(work, "tarsrc");
    await writeTree(src, { "etc/dnf/dnf.conf": "dnf\n", hl1: "same\n", "top/x.txt": ["x\n", 0o600] });
    await link(path.join(src, "hl1"), path.join(src, "hl2"));
    await symlink("top/x.txt", path.join(src, "sl"));
    const fx = path.join(work, "fixtures");
    await mkdir(fx, { recursive: true });
    await sh("tar", ["-cf", path.join(fx, "t.tar"), "-C", src, "etc/dnf/dnf.conf", "hl1", "hl2", "sl", "top"]);
    for (const [tool, ext] of [
      ["gzip", "gz"],
      ["bzip2", "bz2"],
      ["xz", "xz"],
      ["zstd", "zst"],
    ] as const) {
      await writeFile(path.join(fx, `t.tar.${ext}`), await shBuffer(tool, ["-c", path.join(fx, "t.tar")]));
    }
    tgz = await readFile(path.join(fx, "t.tar.gz"));
    http = await startFileServer(
      { "/files/data.txt": "remote data\n", "/": "index\n", "/t.tar.gz": tgz },
      LAST_MODIFIED,
    );
  });
  after(async () => {
    await http?.stop();
    await reg?.stop();
    if (work) await removeDir(work);
  });

  async function context(name: string, dockerfile: string, files: Record<string, string | [string, number]> = {}) {
    const ctx = path.join(work, name);
    await writeTree(ctx, { Dockerfile: dockerfile, ...files });
    return ctx;
  }

  test("copies with Docker's source, destination, owner, mode and link rules", async () => {
    const ctx = await context(
      "ctx-copy",
      [
        `FROM ${base} AS src`,
        "RUN mkdir -p /o/d /real/out && echo a > /o/a && chown 100:200 /o/a && chown 101:201 /o/d && echo s > /real/out/foo && echo p > /o/d/x.png && ln -s /real /abs && ln -s real/out /rel",
        `FROM ${base}`,
        "ARG GREETING=world",
        "COPY *.go /gofiles/",
        "COPY f*.go foo2.go",
        "COPY sub/* /subdest/",
        "COPY sub/*/dir2/foo /subdest2/",
        "COPY sub/*/dir2/foo /subdest3/bar",
        "COPY sub/dir1/ subdest4",
        "COPY sub/dir1/. subdest5",
        "COPY sub/dir1 subdest6",
        "COPY foo.go nomatch* /wild/",
        'COPY ["bar.go", "/json dest/"]',
        "COPY link/dir2/foo /through-link/",
        "COPY lnk /lnkcopy",
        "COPY d /dcopy/",
        "COPY hard /hard/",
        "COPY --chown=kiln f.txt /chown1/",
        "COPY --chown=1000:nogroup sub /chown2/",
        "COPY --chown=1234:5678 sub /newdir/a/b/",
        "COPY --chmod=0640 f.txt /chmod1",
        "COPY --chmod=777 f.txt /parent777/f",
        "COPY --chmod=u=rw,g=r,o=r exec.sh /chmodsym",
        "COPY --chmod=a+X tree /chmodX/",
        "COPY --parents foo1/foo2/bar /pp/",
        "COPY --parents x/./y/z /pivot/",
        "COPY --exclude=*.png pics/ /pics/",
        "COPY --exclude=* pics/ /noneleft/",
        "COPY <<EOF /heredoc.txt",
        "hello ${GREETING}",
        "EOF",
        "COPY <<EOF <<'EOF2' /double/",
        "one",
        "EOF",
        "two ${GREETING}",
        "EOF2",
        "RUN mkdir -p /tmp/symlink-target && ln -s ../tmp/symlink-target /symlink && mkdir /existing && chown 33:33 /existing && chmod 0700 /existing",
        "COPY f.txt /symlink/",
        "COPY --chown=7:7 sub /existing/",
        "COPY --from=src /o /fromsrc/",
        "COPY --link f.txt /linked.txt",
        "COPY test* /uni/",
        "COPY chain/l* /alllinks/",
        "COPY --from=src /abs/out/foo /rel/foo /fromlinks/",
        "COPY --from=src --exclude=*.png /o/d /fromexcl/",
        "COPY --chmod=0751 --chown=kiln <<EOF /hd-owned",
        "x",
        "EOF",
        "COPY sub /twice/",
        "COPY sub /twice/",
        "COPY --parents a/./b/./c/deep.txt /multi/",
        "COPY --parents a/**/deep.txt /star/",
        'ENV empty=""',
        "ARG MODE=0700",
        "WORKDIR /e",
        "COPY f.txt $empty",
        "COPY --chmod=${MODE} f.txt /argmode",
        "WORKDIR /w",
        "COPY f.txt .",
        "COPY f.txt ../up.txt",
        "",
      ].join("\n"),
      {
        "foo.go": "foo\n",
        "bar.go": "bar\n",
        "sub/dir1/dir2/foo": "deep\n",
        "d/file": "in d\n",
        "f.txt": "f\n",
        "exec.sh": ["#!/bin/sh\n", 0o755],
        "tree/plain": ["p\n", 0o644],
        "tree/run": ["r\n", 0o744],
        "foo1/foo2/bar": "pb\n",
        "x/y/z": "z\n",
        "pics/a.png": "png\n",
        "pics/b.txt": "txt\n",
        "pics/sub/c.png": "png\n",
        "hard/one": "h\n",
        "test-äöü.txt": "umlaut\n",
        "test-%C3%A4%C3%B6%C3%BC.txt": "percent\n",
        "test+aou.txt": "plus\n",
        "chain/baz": "baz\n",
        "a/b/c/deep.txt": "deep\n",
      },
    );
    await symlink("sub/dir1", path.join(ctx, "link"));
    await symlink("bar.go", path.join(ctx, "lnk"));
    await symlink("../bar.go", path.join(ctx, "d", "inner"));
    await symlink("nowhere", path.join(ctx, "d", "dangling"));
    await symlink("second", path.join(ctx, "chain", "l1"));
    await symlink("baz", path.join(ctx, "chain", "second"));
    await link(path.join(ctx, "hard", "one"), path.join(ctx, "hard", "two"));
    await mkdir(path.join(ctx, "d", "empty"));
    await utimes(path.join(ctx, "f.txt"), MTIME, MTIME);
    const sock = createServer();
    await new Promise<void>((r) => sock.listen(path.join(ctx, "d", "sock"), r));

    const { r, layout } = await buildToLayout(ctx, path.join(work, "out-copy"));
    sock.close();
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const root = await unpackLayout(layout, path.join(work, "unpack-copy"));
    const read = (p: string) => readFile(path.join(root, p), "utf8");
    const st = (p: string) => lstat(path.join(root, p));
    const owner = async (p: string) => {
      const s = await st(p);
      return `${s.uid}:${s.gid}`;
    };
    const mode = async (p: string) => ((await st(p)).mode & 0o7777).toString(8);

    // wildcards, directory contents, trailing slash, single match to a file name
    assert.deepEqual((await readdir(path.join(root, "gofiles"))).sort(), ["bar.go", "foo.go"]);
    assert.equal(await read("foo2.go"), "foo\n");
    assert.equal(await read("subdest/dir2/foo"), "deep\n");
    assert.equal(await read("subdest2/foo"), "deep\n");
    assert.equal(await read("subdest3/bar"), "deep\n");
    for (const n of [4, 5, 6]) assert.equal(await read(`subdest${n}/dir2/foo`), "deep\n");
    assert.equal(await read("wild/foo.go"), "foo\n");
    assert.equal(await read("json dest/bar.go"), "bar\n");
    // symlinks: named ones followed inside the context, inner ones kept (dangling too)
    assert.equal(await read("through-link/foo"), "deep\n");
    assert.ok((await st("lnkcopy")).isFile());
    assert.equal(await read("lnkcopy"), "bar\n");
    assert.equal(await readlink(path.join(root, "dcopy/inner")), "../bar.go");
    assert.equal(await readlink(path.join(root, "dcopy/dangling")), "nowhere");
    assert.ok((await st("dcopy/empty")).isDirectory());
    // a socket becomes an empty regular file (BuildKit)
    assert.ok((await st("dcopy/sock")).isFile());
    assert.equal((await st("dcopy/sock")).size, 0);
    // hardlinks within one COPY stay hardlinks
    assert.equal((await st("hard/one")).ino, (await st("hard/two")).ino);
    // owners: 0:0 by default, --chown by name / uid:group, created dests and parents owned too
    assert.equal(await owner("gofiles/foo.go"), "0:0");
    assert.equal(await owner("gofiles"), "0:0");
    assert.equal(await owner("chown1/f.txt"), "1000:1000");
    assert.equal(await owner("chown1"), "1000:1000");
    assert.equal(await owner("chown2/dir1/dir2/foo"), "1000:65534");
    assert.equal(await owner("chown2/dir1"), "1000:65534");
    assert.equal(await owner("newdir"), "1234:5678");
    assert.equal(await owner("newdir/a/b/dir1/dir2"), "1234:5678");
    // an existing destination keeps its owner and mode; new entries take --chown
    assert.equal(await owner("existing"), "33:33");
    assert.equal(await mode("existing"), "700");
    assert.equal(await owner("existing/dir1/dir2/foo"), "7:7");
    // --from keeps the source owners without --chown
    assert.equal(await owner("fromsrc/a"), "100:200");
    assert.equal(await owner("fromsrc/d"), "101:201");
    // --chmod octal (file and implied parents) and symbolic
    assert.equal(await mode("chmod1"), "640");
    assert.equal(await mode("parent777"), "777");
    assert.equal(await mode("parent777/f"), "777");
    assert.equal(await mode("chmodsym"), "644");
    assert.equal(await mode("chmodX/run"), "755");
    assert.equal(await mode("chmodX/plain"), "644");
    assert.equal(await mode("chmodX"), "755");
    // mtimes preserved
    assert.equal((await st("chmod1")).mtime.getTime(), MTIME.getTime());
    // --parents with and without a /./ pivot
    assert.equal(await read("pp/foo1/foo2/bar"), "pb\n");
    assert.equal(await read("pivot/y/z"), "z\n");
    await assert.rejects(st("pivot/x"));
    // --exclude relative to the source dir; --exclude=* leaves an empty dest dir
    assert.deepEqual((await readdir(path.join(root, "pics"))).sort(), ["b.txt", "sub"]);
    // `*.png` does not cross "/": pics/sub/c.png stays (patterns are per source root, like BuildKit)
    assert.deepEqual(await readdir(path.join(root, "pics/sub")), ["c.png"]);
    assert.deepEqual(await readdir(path.join(root, "noneleft")), []);
    // heredocs: expanded unless quoted, 0644 root-owned, several into a dir by name
    assert.equal(await read("heredoc.txt"), "hello world\n");
    assert.equal(await mode("heredoc.txt"), "644");
    assert.equal(await owner("heredoc.txt"), "0:0");
    assert.equal(await read("double/EOF"), "one\n");
    assert.equal(await read("double/EOF2"), "two ${GREETING}\n");
    // destination through a symlink in the image
    assert.equal(await read("tmp/symlink-target/f.txt"), "f\n");
    assert.ok((await st("symlink")).isSymbolicLink());
    // --link gives the same result; relative dests resolve against WORKDIR
    assert.equal(await read("linked.txt"), "f\n");
    assert.equal(await read("w/f.txt"), "f\n");
    assert.equal(await read("up.txt"), "f\n");
    // unicode and percent-encoded names are literal
    assert.equal(await read("uni/test-äöü.txt"), "umlaut\n");
    assert.equal(await read("uni/test-%C3%A4%C3%B6%C3%BC.txt"), "percent\n");
    assert.equal(await read("uni/test+aou.txt"), "plus\n");
    // a matched symlink chain is followed to its content
    assert.equal(await read("alllinks/l1"), "baz\n");
    // --from sources resolve absolute and relative links inside the stage's root
    assert.equal(await read("fromlinks/foo"), "s\n");
    assert.deepEqual(await readdir(path.join(root, "fromexcl")), []);
    // heredoc with --chmod/--chown
    assert.equal(await mode("hd-owned"), "751");
    assert.equal(await owner("hd-owned"), "1000:1000");
    assert.equal(await read("twice/dir1/dir2/foo"), "deep\n");
    // several pivots: the first one counts; `**` spans directories
    assert.equal(await read("multi/b/c/deep.txt"), "deep\n");
    assert.equal(await read("star/a/b/c/deep.txt"), "deep\n");
    // an empty destination is the WORKDIR; --chmod from an ARG
    assert.equal(await read("e/f.txt"), "f\n");
    assert.equal(await mode("argmode"), "700");

    // A COPY into an existing dir puts only what it wrote (plus parents) in its layer.
    const layers = await layerListings(layout);
    const existingLayer = layers.find((l) => l.includes("existing/dir1/dir2/foo"));
    assert.ok(existingLayer);
    assert.deepEqual(
      existingLayer.filter((n) => !n.startsWith("existing/")),
      [],
    );
  });

  test("ADD extracts local archives by content and downloads URLs", async () => {
    const fx = path.join(work, "fixtures");
    const sum = createHash("sha256").update("remote data\n").digest("hex");
    const ctx = await context(
      "ctx-add",
      [
        `FROM ${base}`,
        "ADD t.tar /tars/plain/",
        "ADD t.tar.gz /tars/gz/",
        "ADD t.tar.bz2 /tars/bz2",
        "ADD t.tar.xz /tars/xz/",
        "ADD t.tar.zst /tars/zst/",
        "ADD t*.tar /tars/wild/",
        "ADD fake.gz /fake/",
        "ADD --unpack=false t.tar.gz /kept/",
        "COPY t.tar.gz /copied/",
        "ADD --chown=100:200 t.tar /owned/",
        "RUN mkdir -p /sym /etcreal && ln -s /etcreal /sym/etc",
        "ADD t.tar /sym/",
        `ADD ${http.url}/files/data.txt /url/`,
        `ADD --chmod=644 ${http.url}/files/data.txt /url644/`,
        `ADD ${http.url}/ /unnamed/`,
        `ARG SUM=${sum}`,
        `ADD --checksum=sha256:\${SUM} ${http.url}/files/data.txt /urlsum`,
        `ADD --unpack=true ${http.url}/t.tar.gz /urlunpack/`,
        `ADD ${http.url}/t.tar.gz /urlkept/`,
        "",
      ].join("\n"),
    );
    for (const f of ["t.tar", "t.tar.gz", "t.tar.bz2", "t.tar.xz", "t.tar.zst"]) {
      await writeFile(path.join(ctx, f), await readFile(path.join(fx, f)));
    }
    await writeFile(path.join(ctx, "fake.gz"), await shBuffer("gzip", ["-c", path.join(ctx, "Dockerfile")]));
    const { r, layout } = await buildToLayout(ctx, path.join(work, "out-add"));
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const root = await unpackLayout(layout, path.join(work, "unpack-add"));
    const read = (p: string) => readFile(path.join(root, p), "utf8");
    const st = (p: string) => lstat(path.join(root, p));

    for (const d of ["plain", "gz", "bz2", "xz", "zst", "wild"]) {
      assert.equal(await read(`tars/${d}/etc/dnf/dnf.conf`), "dnf\n", d);
      assert.equal((await st(`tars/${d}/hl1`)).ino, (await st(`tars/${d}/hl2`)).ino, d);
      assert.equal(await readlink(path.join(root, `tars/${d}/sl`)), "top/x.txt");
      assert.equal((await st(`tars/${d}/top/x.txt`)).mode & 0o777, 0o600);
    }
    assert.equal(await read("tars/plain/etc/dnf/dnf.conf"), "dnf\n");
    assert.ok((await st("fake/fake.gz")).isFile());
    assert.ok((await st("kept/t.tar.gz")).isFile());
    assert.ok((await st("copied/t.tar.gz")).isFile());
    const owned = await st("owned/top/x.txt");
    assert.equal(`${owned.uid}:${owned.gid}`, "100:200");
    const ownedDir = await st("owned");
    assert.equal(`${ownedDir.uid}:${ownedDir.gid}`, "100:200");

    // extraction follows a symlink already in the image, inside the root
    assert.equal(await read("etcreal/dnf/dnf.conf"), "dnf\n");
    assert.ok((await st("sym/etc")).isSymbolicLink());
    const url = await st("url/data.txt");
    assert.equal(await read("url/data.txt"), "remote data\n");
    assert.equal(url.mode & 0o7777, 0o600);
    assert.equal(url.mtime.getTime(), LAST_MODIFIED.getTime());
    assert.equal((await st("url644/data.txt")).mode & 0o7777, 0o644);
    assert.equal(await read("unnamed/__unnamed__"), "index\n");
    assert.equal(await read("urlsum"), "remote data\n");
    assert.equal(await read("urlunpack/etc/dnf/dnf.conf"), "dnf\n");
    assert.ok((await st("urlkept/t.tar.gz")).isFile());
    assert.deepEqual(await readFile(path.join(root, "urlkept/t.tar.gz")), tgz);
  });

  test("a `**` source never reads through a symlink to a host file; a link inside the context is followed", async () => {
    const secret = path.join(work, "host-secret.txt");
    await writeFile(secret, "host secret\n");
    const ctx = await context("ctx-doublestar-links", `FROM ${base}\nCOPY **/*.txt /out/\n`, {
      "a/plain.txt": "plain\n",
      "b/real.txt": "real\n",
    });
    await symlink(secret, path.join(ctx, "a/evil.txt"));
    await symlink("../b/real.txt", path.join(ctx, "a/good.txt"));
    const { r, layout } = await buildToLayout(ctx, path.join(work, "out-doublestar-links"));
    assert.equal(r.code, 0, r.stderr);
    const root = await unpackLayout(layout, path.join(work, "unpack-doublestar-links"));
    assert.deepEqual((await readdir(path.join(root, "out"))).sort(), ["good.txt", "plain.txt", "real.txt"]);
    assert.equal(await readFile(path.join(root, "out/good.txt"), "utf8"), "real\n");
    for (const n of await readdir(path.join(root, "out"))) {
      assert.notEqual(await readFile(path.join(root, "out", n), "utf8"), "host secret\n", n);
    }
  });

  test("errors name the source and what to do", async () => {
    const cases: [string, RegExp][] = [
      [`ADD ${"$"}{URL}/missing.txt /x`, /missing\.txt.*HTTP 404/],
      [`ADD --checksum=sha256:${"0".repeat(64)} ${"$"}{URL}/files/data.txt /x`, /digest mismatch/],
      [`ADD --checksum=md5:abc ${"$"}{URL}/files/data.txt /x`, /unsupported digest algorithm/],
      ["ADD --checksum=sha256:abc f.txt /x", /checksum requires HTTP\(S\) or Git sources/],
      ["COPY nothere /x", /nothere.*not found/],
      ["COPY nomatch* /x", /no source files/],
      ["ADD git@example.invalid:o/repo.git /src", /only http\(s\) git URLs are supported/],
      ["ADD evil.tar /x/", /climbs out/],
    ];
    const evilSrc = path.join(work, "evil");
    await writeTree(evilSrc, { "a/b": "b\n" });
    const evil = await shBuffer("tar", ["-cf", "-", "-C", path.join(evilSrc, "a"), "--transform", "s,^,../../,", "b"]);
    let i = 0;
    for (const [line, re] of cases) {
      const ctx = await context(`ctx-err-${i++}`, `FROM ${base}\nARG URL=${http.url}\n${line}\n`, { "f.txt": "f\n" });
      await writeFile(path.join(ctx, "evil.tar"), evil);
      const { r } = await buildToLayout(ctx, path.join(work, `out-err-${i}`));
      // A Dockerfile error, an unsupported ADD source included, exits with 1 (2 is for usage errors).
      assert.equal(r.code, 1, `${line}\n${r.stderr}`);
      assert.match(r.stderr, re, `${line}\n${r.stderr}`);
      assert.match(r.stderr, /Dockerfile:3/, line);
      assert.doesNotMatch(r.stderr, /\n\s+at /, line);
    }
  });
});

async function shBuffer(cmd: string, args: string[]): Promise<Buffer> {
  const { execFile } = await import("node:child_process");
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: "buffer", maxBuffer: 64 * 1024 * 1024 }, (err, stdout) =>
      err ? reject(err) : resolve(stdout),
    );
  });
}
