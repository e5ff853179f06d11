import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { runKiln } from "../support/kiln-cli.js";
import { type TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";
import { skopeoInspect, unpackWithUmoci, writeTree } from "../integration/helpers.js";
import { startBusyboxRegistry } from "../support/busybox-registry.js";
import { pathExists } from "../../src/common/path-exists.js";

/** A RUN that marks `me` in a shared cache dir, then waits (bounded) until `other` did the same. */
const rendezvous = (me: string, other: string): string =>
  `RUN --mount=type=cache,target=/sync,id=rendezvous-\${RID} touch /sync/${me} && ` +
  `i=0; while [ ! -e /sync/${other} ]; do i=$((i+1)); [ $i -gt 600 ] && exit 9; sleep 0.1; done; echo ${me} > /${me}.txt`;

// Multi-stage scheduling in real builds: independent stages run at the same time (each stage's RUN
// waits for the other's — built one after the other, the build fails), stage results feed FROM and
// COPY --from, unused stages are skipped, and --target picks a stage.
describe("multi-stage builds", () => {
  let reg: TestRegistry;
  let base: string;
  let work: string;
  before(async () => {
    ({ reg, base } = await startBusyboxRegistry());
    work = await tempDir("multistage");
  });
  after(async () => {
    await reg?.stop();
    if (work) await removeDir(work);
  });

  const dockerfile = [
    "ARG BASE",
    "FROM ${BASE} AS left",
    "ARG RID",
    rendezvous("left", "right"),
    "RUN mkdir -p /app && echo keep > /app/keep && echo gone > /app/gone",
    "FROM ${BASE} AS right",
    "ARG RID",
    rendezvous("right", "left"),
    "FROM ${BASE} AS unused",
    "RUN exit 3",
    "FROM left AS final",
    "RUN rm /app/gone && echo changed > /app/keep",
    "COPY --from=right /right.txt /from-right.txt",
    "",
  ].join("\n");

  const build = (ctx: string, ref: string, extra: string[] = []) =>
    runKiln([
      "build",
      "--context",
      ctx,
      "--destination",
      ref,
      "--insecure",
      "--insecure-pull",
      "--skip-unused-stages",
      "--kaniko-dir",
      path.join(work, "state"),
      "--build-arg",
      `BASE=${base}`,
      ...extra,
    ]);

  test("independent stages build concurrently; FROM and COPY --from use their results", async () => {
    const ctx = path.join(work, "ctx");
    await writeTree(ctx, { Dockerfile: dockerfile });
    const ref = `${reg.host}/multi:v1`;
    const r = await build(ctx, ref, ["--build-arg", "RID=1", "--verbosity=debug"]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    // Two extractions (left, right): the final stage takes left's root over, COPY --from reads right's.
    assert.equal((r.stderr + r.stdout).match(/phase extract:/g)?.length, 2, r.stderr);
    const rootfs = await unpackWithUmoci(ref, path.join(work, "u1"));
    const read = (p: string) => readFile(path.join(rootfs, p), "utf8");
    assert.equal(await read("left.txt"), "left\n");
    assert.equal(await read("from-right.txt"), "right\n");
    assert.equal(await read("app/keep"), "changed\n");
    assert.equal(
      await pathExists(path.join(rootfs, "app/gone")),
      false,
      "the deletion in the final stage is a whiteout",
    );
    assert.equal(await pathExists(path.join(rootfs, "right.txt")), false);
    assert.equal(await pathExists(path.join(rootfs, "sync")), false);
    const raw = (await skopeoInspect(ref, "--raw")) as { layers: unknown[] };
    const baseLayers = ((await skopeoInspect(base, "--raw")) as { layers: unknown[] }).layers.length;
    // left: rendezvous + mkdir; final: rm/echo + COPY.
    assert.equal(raw.layers.length, baseLayers + 4);
  });

  test("--target builds only the stages the target needs", async () => {
    const ctx = path.join(work, "ctx-target");
    await writeTree(ctx, {
      Dockerfile: [
        "ARG BASE",
        "FROM ${BASE} AS one",
        "RUN echo one > /one.txt",
        "FROM ${BASE} AS broken",
        "RUN exit 4",
        "FROM one AS two",
        "RUN cat /one.txt > /two.txt",
        "FROM broken",
        "",
      ].join("\n"),
    });
    const ref = `${reg.host}/multi:target`;
    const r = await build(ctx, ref, ["--target", "two"]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const rootfs = await unpackWithUmoci(ref, path.join(work, "u2"));
    assert.equal(await readFile(path.join(rootfs, "two.txt"), "utf8"), "one\n");
    // Without --target the broken stage is needed and its exit code is the build's.
    const r2 = await build(ctx, `${reg.host}/multi:all`);
    assert.equal(r2.code, 4, r2.stderr + r2.stdout);
  });

  test("a failing stage stops the stages running beside it", async () => {
    const ctx = path.join(work, "ctx-fail");
    await writeTree(ctx, {
      Dockerfile: [
        "ARG BASE",
        "FROM ${BASE} AS waits",
        "ARG RID",
        // Would wait a minute for a partner that never comes; the failing stage must end it first.
        rendezvous("waits", "never"),
        "FROM ${BASE} AS fails",
        "RUN exit 5",
        "FROM ${BASE}",
        "COPY --from=waits /waits.txt /",
        "COPY --from=fails /etc/passwd /",
        "",
      ].join("\n"),
    });
    const t0 = Date.now();
    const r = await build(ctx, `${reg.host}/multi:fail`, ["--build-arg", "RID=2"]);
    assert.equal(r.code, 5, r.stderr + r.stdout);
    assert.ok(Date.now() - t0 < 50_000, "the waiting stage was not interrupted");
  });
});
