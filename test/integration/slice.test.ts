import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { lstat, readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { runKiln } from "../support/kiln-cli.js";
import { type TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";
import { sh, skopeoInspect, unpackWithUmoci, writeTree } from "./helpers.js";
import { startBusyboxRegistry } from "../support/busybox-registry.js";

// The first vertical slice end to end: a Dockerfile with every instruction of the slice, built on a
// busybox base that umoci made (not kiln), pushed to the real distribution registry, then read back
// with skopeo and unpacked with umoci.
describe("build and push to a real registry", () => {
  let reg: TestRegistry;
  let base: string;
  let work: string;
  before(async () => {
    ({ reg, base } = await startBusyboxRegistry());
    work = await tempDir("slice");
  });
  after(async () => {
    await reg?.stop();
    if (work) await removeDir(work);
  });

  test("every slice instruction lands in the pushed image", async () => {
    const ctx = path.join(work, "ctx");
    await writeTree(ctx, {
      Dockerfile: [
        "ARG BASE",
        "FROM ${BASE} AS build",
        "ARG GREETING=hi",
        "ARG FROM_CLI",
        "ENV APP_HOME=/srv/app",
        'RUN echo "$GREETING $FROM_CLI" > /greeting && mkdir -p /doomed && touch /doomed/x /tmp/gone',
        'RUN ["/bin/sh", "-c", "rm -rf /doomed /tmp/gone && echo $HOME > /home.txt"]',
        "COPY files/ $APP_HOME/",
        "COPY *.txt /texts/",
        "WORKDIR $APP_HOME/sub",
        "RUN pwd > /pwd.txt && id -u > /uid.txt",
        "USER 1000:1000",
        'LABEL a=b "c d"=e',
        "EXPOSE 8080 53/udp",
        'ENTRYPOINT ["/bin/sh"]',
        'CMD ["-c", "echo hi"]',
        "",
      ].join("\n"),
      ".dockerignore": "files/ignored.log\nsecret.txt\n",
      "files/a.txt": "a\n",
      "files/dir/b.txt": ["b\n", 0o640],
      "files/ignored.log": "nope\n",
      "one.txt": "1\n",
      "two.txt": "2\n",
      "secret.txt": "s3cr3t\n",
    });
    const digestFile = path.join(work, "digest");
    const ref = `${reg.host}/app:v1`;
    const r = await runKiln([
      "build",
      "--dockerfile",
      path.join(ctx, "Dockerfile"),
      "--context",
      ctx,
      "--destination",
      ref,
      "--insecure",
      "--insecure-pull",
      "--build-arg",
      `BASE=${base}`,
      "--build-arg",
      "FROM_CLI=cli",
      "--digest-file",
      digestFile,
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const digest = await readFile(digestFile, "utf8");
    assert.match(digest, /^sha256:[a-f0-9]{64}$/);

    const inspected = await skopeoInspect(ref);
    assert.equal(inspected.Digest, digest);
    const cfg = (await skopeoInspect(ref, "--config")) as {
      config: Record<string, unknown>;
      rootfs: { diff_ids: string[] };
      history: { created_by: string; empty_layer?: boolean }[];
    };
    const c = cfg.config;
    assert.ok((c.Env as string[]).includes("APP_HOME=/srv/app"));
    assert.ok((c.Env as string[]).some((e) => e.startsWith("PATH=")));
    assert.deepEqual(c.Entrypoint, ["/bin/sh"]);
    assert.deepEqual(c.Cmd, ["-c", "echo hi"]);
    assert.equal(c.WorkingDir, "/srv/app/sub");
    assert.equal(c.User, "1000:1000");
    assert.deepEqual(c.Labels, { a: "b", "c d": "e" });
    assert.deepEqual(c.ExposedPorts, { "8080/tcp": {}, "53/udp": {} });
    // base layer + RUN + RUN + COPY + COPY + WORKDIR + RUN
    assert.equal(cfg.rootfs.diff_ids.length, 7);
    const nonEmpty = cfg.history.filter((h) => !h.empty_layer);
    assert.equal(nonEmpty.length, 7);
    assert.ok(cfg.history.some((h) => h.empty_layer === true && /^ENV APP_HOME=\/srv\/app/.test(h.created_by)));
    const manifest = (await skopeoInspect(ref, "--raw")) as { layers: unknown[] };
    assert.equal(manifest.layers.length, 7);

    const rootfs = await unpackWithUmoci(ref, path.join(work, "unpacked"));
    const read = (p: string) => readFile(path.join(rootfs, p), "utf8");
    assert.equal(await read("greeting"), "hi cli\n");
    assert.equal(await read("home.txt"), "/root\n");
    assert.equal(await read("pwd.txt"), "/srv/app/sub\n");
    assert.equal(await read("uid.txt"), "0\n");
    await assert.rejects(lstat(path.join(rootfs, "doomed")));
    await assert.rejects(lstat(path.join(rootfs, "tmp/gone")));
    assert.equal(await read("srv/app/a.txt"), "a\n");
    const b = await lstat(path.join(rootfs, "srv/app/dir/b.txt"));
    assert.equal(b.mode & 0o7777, 0o640);
    assert.equal(b.uid, 0);
    assert.equal(b.gid, 0);
    await assert.rejects(lstat(path.join(rootfs, "srv/app/ignored.log")));
    assert.deepEqual((await readdir(path.join(rootfs, "texts"))).sort(), ["one.txt", "two.txt"]);
    assert.ok((await lstat(path.join(rootfs, "srv/app/sub"))).isDirectory());

    // The deletion is a whiteout in the second RUN's layer.
    const layout = path.join(work, "unpacked", "layout");
    const m = JSON.parse(
      await readFile(
        path.join(
          layout,
          "blobs/sha256",
          (
            JSON.parse(await readFile(path.join(layout, "index.json"), "utf8")) as { manifests: { digest: string }[] }
          ).manifests[0]!.digest.slice(7),
        ),
        "utf8",
      ),
    ) as { layers: { digest: string }[] };
    const listing = await sh("tar", ["-tzf", path.join(layout, "blobs/sha256", m.layers[2]!.digest.slice(7))]);
    assert.match(listing, /(^|\n)\.wh\.doomed\n/);
    assert.match(listing, /(^|\n)tmp\/\.wh\.gone\n/);
  });

  test("a failing RUN's exit code becomes kiln's exit code", async () => {
    const ctx = path.join(work, "ctx-fail");
    await writeTree(ctx, { Dockerfile: `FROM ${base}\nRUN echo before\nRUN exit 42\n` });
    const r = await runKiln(["build", "-f", path.join(ctx, "Dockerfile"), "-c", ctx, "--no-push", "--insecure-pull"]);
    assert.equal(r.code, 42, r.stderr);
    assert.match(r.stderr + r.stdout, /Dockerfile:3/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test("an unknown instruction names the file and line and suggests the fix", async () => {
    const ctx = path.join(work, "ctx-bad");
    await writeTree(ctx, { Dockerfile: `FROM ${base}\nRUNN echo hi\n` });
    const r = await runKiln(["build", "-f", path.join(ctx, "Dockerfile"), "-c", ctx, "--no-push"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Dockerfile:2/);
    assert.match(r.stderr, /RUNN/);
    assert.match(r.stderr, /did you mean RUN/i);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test("an unreachable registry is named in one clear line", async () => {
    const ctx = path.join(work, "ctx-unreach");
    await writeTree(ctx, { Dockerfile: "FROM 127.0.0.1:1/nothing:latest\nRUN true\n" });
    const r = await runKiln(["build", "-f", path.join(ctx, "Dockerfile"), "-c", ctx, "--no-push", "--insecure-pull"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /127\.0\.0\.1:1/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test("a missing Dockerfile is named", async () => {
    const r = await runKiln(["build", "-f", path.join(work, "nope", "Dockerfile"), "-c", work, "--no-push"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /nope\/Dockerfile/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });
});
