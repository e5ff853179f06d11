import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { lstat, mkdir, readFile, readdir, readlink, rm, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { writeTree } from "../integration/helpers.js";
import { useSuiteFixture } from "../support/suite-fixture.js";
import { runKiln, type RunKilnResult } from "../support/kiln-cli.js";
import { buildToLayout, unpackLayout } from "./copy-support.js";
import { createdBy, layoutConfig } from "../conformance/checklist-support.js";

// Items of the BuildKit frontend checklist (docs/buildkit-checklist.md) about COPY destinations, multi-stage
// sources, RUN heredocs, ONBUILD, RUN mounts and the layer cache, built for real on busybox from a real
// registry and checked on the OCI layout (JSON) and its rootfs unpacked with skopeo + umoci.
describe("BuildKit checklist: COPY, stages, heredocs, ONBUILD, mounts, cache", () => {
  const fx = useSuiteFixture("checklist-steps");
  let n = 0;

  const context = async (dockerfile: string[], files: Record<string, string | [string, number]> = {}) => {
    const ctx = path.join(fx.work, `ctx-${++n}`);
    await writeTree(ctx, { Dockerfile: dockerfile.join("\n") + "\n", ...files });
    return ctx;
  };
  const buildCtx = async (ctx: string, extra: string[] = []) => {
    const { r, layout } = await buildToLayout(ctx, path.join(fx.work, `out-${++n}`), extra);
    return { r, layout };
  };
  const rootfsOf = (layout: string) => unpackLayout(layout, path.join(fx.work, `unpack-${++n}`));
  const ok = (r: RunKilnResult) => assert.equal(r.code, 0, r.stderr + r.stdout);

  test("COPY destinations: WORKDIR-relative, --link into ., parents created, .. clamped, --from paths absolute, ENV in sources", async () => {
    const ctx = await context(
      [
        `FROM ${fx.base} AS golang`,
        "RUN echo root > /marker && mkdir -p /sub && echo sub > /sub/marker",
        "WORKDIR /sub",
        "LABEL fromstage=1",
        `FROM ${fx.base} AS sibling`,
        "LABEL sibling=1",
        "RUN echo sib > /sib.txt",
        "FROM golang AS child",
        "RUN echo child > /child.txt",
        `FROM ${fx.base}`,
        "ENV FOO bar",
        "COPY $FOO /baz",
        "WORKDIR /test1",
        "WORKDIR test2",
        "COPY foo ./",
        "ADD foo ./bar/baz",
        "WORKDIR /var/www",
        "COPY --link foo .",
        "WORKDIR /test5/test6",
        "COPY foo ../",
        "WORKDIR ..",
        "COPY foo ../../../../top-foo",
        "WORKDIR /all",
        "COPY . .",
        "COPY --from=golang marker /from-golang",
        "COPY --from=sibling /sib.txt /sib.txt",
        "COPY --chmod=0 foo /mode0",
        "COPY --chmod=770 foo /parent/sub/foo",
        "COPY --from=child /child.txt /marker /from-child/",
        "COPY --exclude=*.png dlink* /excl/",
      ],
      { foo: "foo\n", bar: "bar\n", "dlinks/a.png": "png\n", "dlinks/keep.txt": "k\n" },
    );
    await symlink("../foo", path.join(ctx, "dlinks", "inner"));
    await symlink("nowhere", path.join(ctx, "dlinks", "dangling"));
    const { r, layout } = await buildCtx(ctx);
    ok(r);
    const root = await rootfsOf(layout);
    const read = (p: string) => readFile(path.join(root, p), "utf8");
    const mode = async (p: string) => ((await lstat(path.join(root, p))).mode & 0o7777).toString(8);
    assert.equal(await read("baz"), "bar\n");
    assert.equal(await read("test1/test2/foo"), "foo\n");
    assert.equal(await read("test1/test2/bar/baz"), "foo\n");
    assert.equal(await read("var/www/foo"), "foo\n");
    assert.equal(await read("test5/foo"), "foo\n");
    assert.equal(await read("top-foo"), "foo\n");
    assert.deepEqual((await readdir(path.join(root, "all"))).sort(), ["Dockerfile", "bar", "dlinks", "foo"]);
    // A stage named like an image wins over the image; its source paths ignore the stage's WORKDIR.
    assert.equal(await read("from-golang"), "root\n");
    assert.equal(await read("sib.txt"), "sib\n");
    assert.equal(await mode("mode0"), "0");
    assert.equal(await mode("parent/sub"), "770");
    assert.equal(await read("from-child/child.txt"), "child\n");
    assert.equal(await read("from-child/marker"), "root\n");
    // --exclude with a dir* source: symlinks inside stay symlinks, dangling ones too.
    assert.deepEqual((await readdir(path.join(root, "excl"))).sort(), ["dangling", "inner", "keep.txt"]);
    assert.equal(await readlink(path.join(root, "excl/inner")), "../foo");
    assert.equal(await readlink(path.join(root, "excl/dangling")), "nowhere");
    const { cfg } = await layoutConfig(layout);
    // COPY --from copies files, not the other stage's config; the history is this stage's chain only.
    assert.equal(cfg.config.Labels?.sibling, undefined);
    assert.equal(cfg.config.Labels?.fromstage, undefined);
    const h = createdBy(cfg);
    assert.ok(!h.some((c) => c.includes("echo sib") || c.includes("echo root") || c.includes("LABEL")), h.join("\n"));
    assert.ok(h.includes("COPY marker /from-golang # buildkit"), h.join("\n"));
  });

  test("a stage FROM another inherits its config; a missing --parents source fails", async () => {
    const ctx = await context([
      `FROM ${fx.base} AS first`,
      "LABEL first=1",
      "ENV FIRST=1",
      "WORKDIR /w",
      "FROM first",
      "RUN echo $FIRST > /first.txt",
    ]);
    const { r, layout } = await buildCtx(ctx);
    ok(r);
    const { cfg } = await layoutConfig(layout);
    assert.equal(cfg.config.Labels?.first, "1");
    assert.ok(cfg.config.Env?.includes("FIRST=1"));
    assert.equal(cfg.config.WorkingDir, "/w");
    const bad = await context([`FROM ${fx.base}`, "COPY --parents test/nonexistent-file /out/"], { "test/x": "x\n" });
    const b = await buildCtx(bad);
    assert.notEqual(b.r.code, 0);
    assert.match(b.r.stderr, /nonexistent-file.*not found/);
  });

  test("RUN heredocs: script, SHELL program, shebang, <<- tabs, several heredocs, fds, expansion rules", async () => {
    const ctx = await context([
      `FROM ${fx.base}`,
      "ARG name=world",
      "RUN mkdir /out",
      "RUN <<EOF",
      'echo "i am" > /out/basic',
      "id -un >> /out/basic",
      "EOF",
      "RUN <<-EOF",
      "\t#!/bin/awk -f",
      '\tBEGIN { print "shebang" > "/out/shebang" }',
      "\tEOF",
      "RUN cat <<EOF1 | tr a-z A-Z > /out/multi; cat <<EOF2 >> /out/multi",
      "first",
      "EOF1",
      "second",
      "EOF2",
      "RUN <<EOF 3<<IN1 awk -f -",
      'BEGIN { while ((getline line < "/dev/fd/3") > 0) print toupper(line) > "/out/fd" }',
      "EOF",
      "hello fd",
      "IN1",
      "RUN <<EOF sh > /out/indent",
      "\techo kept",
      "EOF",
      "RUN <<-EOF sh > /out/stripped",
      "\techo stripped",
      "\tEOF",
      "COPY <<EOF /out/copy-kept",
      "\tfoo",
      "EOF",
      "COPY <<-EOF /out/copy-stripped",
      "\tbar",
      "\tEOF",
      "COPY <<EOF /out/expanded",
      "'${name}' \"$name\"",
      "EOF",
      "COPY <<'EOF' /out/literal",
      "${name}",
      "EOF",
      'COPY <<"EOF" /out/literal2',
      "${name}",
      "EOF",
      "RUN <<EOF",
      'greeting="Hello"',
      'echo "${greeting} ${name}!" > /out/shellvars',
      "name=new\\ world",
      'echo "${greeting} ${name}!" >> /out/shellvars',
      "EOF",
      'SHELL ["/bin/awk"]',
      "RUN <<EOF",
      'BEGIN { print "awk program" > "/out/awk" }',
      "EOF",
    ]);
    const { r, layout } = await buildCtx(ctx);
    ok(r);
    const root = await rootfsOf(layout);
    const read = (p: string) => readFile(path.join(root, "out", p), "utf8");
    assert.equal(await read("basic"), "i am\nroot\n");
    assert.equal(await read("shebang"), "shebang\n");
    assert.equal(await read("multi"), "FIRST\nsecond\n");
    assert.equal(await read("fd"), "HELLO FD\n");
    assert.equal(await read("indent"), "kept\n");
    assert.equal(await read("stripped"), "stripped\n");
    assert.equal(await read("copy-kept"), "\tfoo\n");
    assert.equal(await read("copy-stripped"), "bar\n");
    assert.equal(await read("expanded"), "'world' \"world\"\n");
    assert.equal(await read("literal"), "${name}\n");
    assert.equal(await read("literal2"), "${name}\n");
    assert.equal(await read("shellvars"), "Hello world!\nHello new world!\n");
    assert.equal(await read("awk"), "awk program\n");
  });

  test("ONBUILD: triggers run once in the child and are cleared; in-file inheritance; new deps; parent labels kept", async () => {
    const baseCtx = await context([
      `FROM ${fx.base}`,
      "LABEL parent=1",
      "ONBUILD RUN echo 1 >> /count",
      "ONBUILD RUN <<EOF",
      "echo heredoc > /onbuild-heredoc",
      "EOF",
      `ONBUILD COPY --from=${fx.base} /bin/busybox /copied-from-image`,
      "ONBUILD RUN --mount=type=bind,from=inputstage,source=/in.txt,target=/mnt/in.txt cat /mnt/in.txt > /from-input",
      "ONBUILD RUN --mount=type=cache,target=/onbuild-cache touch /onbuild-cache/x && echo cache > /from-cache-mount",
    ]);
    const parent = `${fx.reg.host}/onbuild:parent`;
    ok(await runKiln(["build", "--context", baseCtx, "--destination", parent, "--insecure", "--insecure-pull"]));
    const childCtx = await context([
      `FROM ${fx.base} AS inputstage`,
      "RUN echo input > /in.txt",
      `FROM ${parent} AS child`,
      "LABEL child=1",
      "FROM child AS grandchild",
      "RUN cat /count > /grand-count",
      `FROM ${fx.base} AS inbase`,
      "ONBUILD RUN echo mid > /mid.txt",
      "ONBUILD COPY --from=inputstage /in.txt /copied-in.txt",
      "FROM inbase AS mid",
      "FROM grandchild",
      "COPY --from=mid /mid.txt /copied-in.txt /",
    ]);
    const { r, layout } = await buildCtx(childCtx);
    ok(r);
    const root = await rootfsOf(layout);
    const read = (p: string) => readFile(path.join(root, p), "utf8");
    assert.equal(await read("count"), "1\n", "the trigger ran once");
    assert.equal(await read("grand-count"), "1\n", "a stage FROM the child does not run them again");
    assert.equal(await read("onbuild-heredoc"), "heredoc\n");
    assert.ok((await lstat(path.join(root, "copied-from-image"))).isFile());
    assert.equal(await read("from-input"), "input\n");
    assert.equal(await read("from-cache-mount"), "cache\n");
    assert.equal(await read("mid.txt"), "mid\n");
    assert.equal(await read("copied-in.txt"), "input\n");
    const { cfg } = await layoutConfig(layout);
    assert.ok(!cfg.config.OnBuild || cfg.config.OnBuild.length === 0, "triggers are cleared in the child");
    assert.deepEqual(cfg.config.Labels, { parent: "1", child: "1" });

    // A trigger that fails names the FROM line that brought it (it is not in the child's Dockerfile).
    const failing = `${fx.reg.host}/onbuild:failing`;
    const failCtx = await context([`FROM ${fx.base}`, "ONBUILD RUN exit 3"]);
    ok(await runKiln(["build", "--context", failCtx, "--destination", failing, "--insecure", "--insecure-pull"]));
    const { r: failed } = await buildCtx(await context(["# a comment line", "", `FROM ${failing}`, "RUN true"]));
    assert.equal(failed.code, 3, failed.stderr);
    assert.match(failed.stderr, /Dockerfile:3: the command '\/bin\/sh -c exit 3' returned a non-zero code: 3/);
  });

  test("RUN mounts: default bind of the context, tmpfs size, cache ids and modes, secret file modes and env+target", async () => {
    const secret = path.join(fx.work, "mysecret.txt");
    await writeFile(secret, "s3cr3t-value\n");
    const ctx = await context(
      [
        `FROM ${fx.base} AS build`,
        "RUN mkdir /outdir && echo o > /outdir/o",
        `FROM ${fx.base}`,
        "RUN mkdir /out",
        "RUN --mount=from=build,src=outdir,target=/o,rw touch /o/new && ls /o > /out/from-rw",
        "RUN --mount=target=/context cat /context/a.txt > /out/ctx && (touch /context/x 2>/dev/null && echo rw || echo ro) > /out/ctx-ro",
        "RUN --mount=type=tmpfs,target=/mytmp,size=128m grep ' /mytmp ' /proc/mounts | grep -o 'size=[0-9a-z]*' > /out/tmpfs && touch /mytmp/gone",
        "RUN --mount=type=cache,target=/c1 echo shared > /c1/f",
        "RUN --mount=type=cache,target=/c1 cat /c1/f > /out/same-target",
        "RUN --mount=type=cache,target=/c2 ls /c2 > /out/other-target",
        "RUN --mount=type=cache,target=/c3,id=shared echo by-id > /c3/f",
        "RUN --mount=type=cache,target=/c4,id=shared cat /c4/f > /out/by-id",
        "RUN --mount=type=cache,target=/c5,uid=1001,gid=1002,mode=0751 stat -c '%u %g %f' /c5 > /out/cache-stat",
        "RUN --mount=type=secret,id=mysecret,required=false,mode=741,uid=100,gid=102,target=/mysecret stat -c '%u %g %f' /mysecret > /out/secret-stat",
        'RUN --mount=type=secret,id=mysecret,env=SECRET_ENV,target=/both test -f /both && test -n "$SECRET_ENV" && echo both > /out/secret-both',
      ],
      { "a.txt": "from-ctx\n" },
    );
    const { r, layout } = await buildCtx(ctx, ["--secret", `id=mysecret,src=${secret}`]);
    ok(r);
    const root = await rootfsOf(layout);
    const read = (p: string) => readFile(path.join(root, "out", p), "utf8");
    assert.equal(await read("ctx"), "from-ctx\n");
    assert.equal(await read("from-rw"), "new\no\n");
    assert.equal(await read("ctx-ro"), "ro\n");
    assert.equal(await read("tmpfs"), "size=131072k\n");
    assert.equal(await read("same-target"), "shared\n");
    assert.equal(await read("other-target"), "");
    assert.equal(await read("by-id"), "by-id\n");
    assert.equal(await read("cache-stat"), "1001 1002 41e9\n");
    assert.equal(await read("secret-stat"), "100 102 81e1\n");
    assert.equal(await read("secret-both"), "both\n");
    for (const p of ["mysecret", "both", "mytmp", "context", "c1", "o"]) {
      await assert.rejects(lstat(path.join(root, p)), `${p} left in the image`);
    }
  });

  test("RUN cache mounts: nested targets, seeded from a stage (from=, source= clamped to the stage) and from the context", async () => {
    const id = `seed-${Date.now()}`;
    const ctx = await context(
      [
        `FROM ${fx.base} AS build`,
        "RUN mkdir -p /outdir/sub && echo seeded > /outdir/sub/f",
        `FROM ${fx.base}`,
        "RUN mkdir /out",
        `RUN --mount=type=cache,target=/a,id=${id}-a --mount=type=cache,target=/a/b,id=${id}-b echo inner > /a/b/f && echo outer > /a/f && ls /a > /out/nested-ls`,
        `RUN --mount=type=cache,target=/a,id=${id}-a --mount=type=cache,target=/a/b,id=${id}-b cat /a/f /a/b/f > /out/nested`,
        `RUN --mount=type=cache,target=/s,id=${id}-s,from=build,source=../../outdir/sub cat /s/f > /out/seeded && echo more > /s/g`,
        `RUN --mount=type=cache,target=/s,id=${id}-s,from=build,source=outdir/sub cat /s/g > /out/kept`,
        `RUN --mount=type=cache,target=/k,id=${id}-k,source=data cat /k/d.txt > /out/from-context`,
      ],
      { "data/d.txt": "ctx-data\n" },
    );
    const { r, layout } = await buildCtx(ctx);
    ok(r);
    const root = await rootfsOf(layout);
    const read = (p: string) => readFile(path.join(root, "out", p), "utf8");
    assert.equal(await read("nested-ls"), "b\nf\n");
    assert.equal(await read("nested"), "outer\ninner\n");
    assert.equal(await read("seeded"), "seeded\n");
    assert.equal(await read("kept"), "more\n", "a seeded cache keeps what earlier steps wrote");
    assert.equal(await read("from-context"), "ctx-data\n");
    for (const p of ["a", "s", "k"]) await assert.rejects(lstat(path.join(root, p)), `${p} left in the image`);
  });

  test("layer cache: proxy args do not bust RUN, COPY keys on the matched files only, a dir turned file is copied anew", async () => {
    const ctx = await context(
      [`FROM ${fx.base}`, "RUN echo $http_proxy > /proxy-seen", "COPY foo* files/", "RUN ls -R /files > /listing"],
      { foo1: "1\n", foo2: "2\n", bar: "bar\n" },
    );
    const cacheDir = path.join(fx.work, "cache-dir");
    const cacheFlags = ["--cache=true", "--cache-repo", `dir:${cacheDir}`, "--cache-copy-layers", "--reproducible"];
    const hits = (r: RunKilnResult) => (r.stderr + r.stdout).match(/Using caching version of cmd/g)?.length ?? 0;
    const first = await buildCtx(ctx, [...cacheFlags, "--build-arg", "http_proxy=http://one.invalid"]);
    ok(first.r);
    const proxy = await buildCtx(ctx, [...cacheFlags, "--build-arg", "http_proxy=http://two.invalid"]);
    ok(proxy.r);
    assert.equal(hits(proxy.r), 3, "a changed proxy value keeps every step cached\n" + proxy.r.stderr);
    await writeFile(path.join(ctx, "bar"), "changed\n");
    const unmatched = await buildCtx(ctx, cacheFlags);
    ok(unmatched.r);
    assert.equal(hits(unmatched.r), 3, "a file COPY foo* does not match changes nothing\n" + unmatched.r.stderr);
    await writeFile(path.join(ctx, "foo2"), "22\n");
    const matched = await buildCtx(ctx, cacheFlags);
    ok(matched.r);
    assert.equal(hits(matched.r), 1, "changing foo2 busts the COPY and the RUN after it\n" + matched.r.stderr);

    const dirCtx = await context([`FROM ${fx.base}`, "COPY foo /foo"]);
    await mkdir(path.join(dirCtx, "foo"));
    await writeFile(path.join(dirCtx, "foo", "inner"), "inner\n");
    ok((await buildCtx(dirCtx, cacheFlags)).r);
    await rm(path.join(dirCtx, "foo"), { recursive: true });
    await writeFile(path.join(dirCtx, "foo"), "now a file\n");
    const again = await buildCtx(dirCtx, cacheFlags);
    ok(again.r);
    const root = await rootfsOf(again.layout);
    assert.equal(await readFile(path.join(root, "foo"), "utf8"), "now a file\n");
  });
});
