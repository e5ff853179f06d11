/**
 * Stages read only through COPY --from (not the target, not a FROM base) write no layer blobs: their
 * steps update the stage root, which COPY --from reads, but nothing is tarred or spooled. Library builds
 * against the local busybox registry; the run's blobs dir is listed just before the image is written.
 * With the layer cache those layers are produced and cached, and the image is the same either way.
 */
import * as assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import * as path from "node:path";
import { unpackWithUmoci, writeTree } from "../integration/helpers.js";
import { startBusyboxRegistry } from "../support/busybox-registry.js";
import { libraryBuild, type LibraryBuildOutcome } from "../support/library-build.js";
import type { TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";

const skip = process.getuid?.() !== 0 ? "RUN needs root here" : false;

interface Outcome extends LibraryBuildOutcome {
  /** Files of the run's blobs dir when the final stage's RUN starts (every other stage is done then). */
  blobs: string[];
}

/** Builds with kaniko flags; `stateDir` must hold no other build. */
async function buildWith(args: string[], stateDir: string): Promise<Outcome> {
  let blobs: string[] | undefined;
  const o = await libraryBuild([...args, "--kaniko-dir", stateDir], {
    onEvent: (e) => {
      if (e.kind === "step-start" && e.stage === 3 && e.step === 3) {
        const runs = readdirSync(stateDir).filter((n) => n.startsWith("build-"));
        assert.equal(runs.length, 1, `one build dir under ${stateDir}`);
        blobs = readdirSync(path.join(stateDir, runs[0] as string, "blobs")).filter((n) => n.startsWith("sha256-"));
      }
    },
  });
  assert.ok(blobs, "the final stage ran");
  return { ...o, blobs };
}

const layersOf = (o: Outcome, stage: number): string[] =>
  o.events.flatMap((e) => (e.kind === "layer-created" && e.stage === stage ? [e.layer.digest] : []));
const debugLines = (o: Outcome): string[] => o.events.flatMap((e) => (e.kind === "debug" ? [e.message] : []));

describe("layers of stages nobody reads", { skip }, () => {
  let reg: TestRegistry;
  let base: string;
  let work: string;
  before(async () => {
    ({ reg, base } = await startBusyboxRegistry());
    work = await tempDir("unread-layers");
    await writeTree(path.join(work, "ctx"), {
      // 0 gen: read by COPY --from only; 1 parent: FROM base of 2; 2 child: read by COPY --from only; 3 final.
      Dockerfile: [
        "ARG BASE",
        "FROM ${BASE} AS gen",
        "RUN mkdir /out && echo generated > /out/app && head -c 300000 /dev/zero > /big",
        "COPY ctx.txt /out/ctx.txt",
        "WORKDIR /out/w",
        "FROM ${BASE} AS parent",
        "RUN echo parent > /parent.txt",
        "FROM parent AS child",
        "RUN echo child > /child.txt && rm /parent.txt",
        "FROM ${BASE}",
        "COPY --from=gen /out /out",
        "COPY --from=child /child.txt /",
        "RUN test ! -e /big && test ! -e /parent.txt",
        "",
      ].join("\n"),
      "ctx.txt": "from the context\n",
    });
  });
  after(async () => {
    await reg?.stop();
    if (work) await removeDir(work);
  });

  const common = (tag: string): string[] => [
    "--context",
    path.join(work, "ctx"),
    "--destination",
    `${reg.host}/unread:${tag}`,
    "--insecure",
    "--insecure-pull",
    "--reproducible",
    "--build-arg",
    `BASE=${base}`,
  ];

  it("spools no blob for the steps of a stage read only through COPY --from", async () => {
    const o = await buildWith(common("plain"), path.join(work, "state-plain"));
    assert.deepEqual(layersOf(o, 0), [], "gen: no layer");
    assert.deepEqual(layersOf(o, 2), [], "child: no layer");
    assert.equal(layersOf(o, 1).length, 1, "parent is a FROM base: its layer is produced");
    assert.equal(layersOf(o, 3).length, 3);
    // When the final RUN starts, the blobs dir holds parent's layer and the two COPY layers, nothing of gen or child.
    const expected = [...layersOf(o, 1), ...layersOf(o, 3).slice(0, 2)].map((d) => d.replace(":", "-"));
    assert.deepEqual([...o.blobs].sort(), expected.sort());
    const debug = debugLines(o);
    assert.ok(
      debug.some((m) => m.startsWith("stage 0: 3 layer(s) not materialized")),
      debug.join("\n"),
    );
    assert.ok(
      debug.some((m) => m.startsWith("stage 2: 1 layer(s) not materialized")),
      debug.join("\n"),
    );
    assert.ok(!debug.some((m) => /^stage [13]: .* not materialized/.test(m)), debug.join("\n"));
    const done = o.events.filter((e) => e.kind === "step-done" && (e.stage === 0 || e.stage === 2));
    assert.ok(done.length > 0 && done.every((e) => e.kind === "step-done" && e.layer === undefined));

    const rootfs = await unpackWithUmoci(`${reg.host}/unread:plain`, path.join(work, "u-plain"));
    assert.equal(await readFile(path.join(rootfs, "out/app"), "utf8"), "generated\n");
    assert.equal(await readFile(path.join(rootfs, "out/ctx.txt"), "utf8"), "from the context\n");
    assert.equal(await readFile(path.join(rootfs, "child.txt"), "utf8"), "child\n");
  });

  it("with --cache=true the layers are produced and cached, and the image is the same", async () => {
    const plain = await buildWith(common("plain2"), path.join(work, "state-plain2"));
    const cacheArgs = ["--cache=true", "--cache-repo", `dir:${path.join(work, "cache")}`, "--cache-copy-layers"];
    const cold = await buildWith([...common("cold"), ...cacheArgs], path.join(work, "state-cold"));
    assert.equal(layersOf(cold, 0).length, 3, "gen: RUN, COPY and WORKDIR layers");
    assert.equal(layersOf(cold, 2).length, 1);
    assert.ok(!debugLines(cold).some((m) => m.includes("not materialized")));
    assert.equal(cold.digest, plain.digest, "the omitted layers do not change the image");

    const warm = await buildWith([...common("warm"), ...cacheArgs], path.join(work, "state-warm"));
    const hits = warm.events.filter(
      (e) => e.kind === "step-done" && (e.stage === 0 || e.stage === 2) && e.cache?.status === "hit",
    );
    assert.equal(hits.length, 4, "every RUN/COPY/WORKDIR of gen and child is a cache hit");
    assert.equal(warm.digest, plain.digest);
  });
});
