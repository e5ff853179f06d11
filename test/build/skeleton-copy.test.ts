/**
 * A COPY after which its stage needs no filesystem works on a skeleton of the unextracted root (the base's
 * and cached layers' directories and symlinks): the image must be byte-identical to the one the extracted
 * root gives (`skeletonCopy: false`), through symlinks of the image, under its directories' metadata, with a
 * numeric --chown, after cache hits, over a file of the image, and where the COPY needs a directory where
 * the image holds a file (then kiln extracts the root and copies again). Library builds against a real registry, `--reproducible` so that digests compare.
 */
import * as assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as path from "node:path";
import type { BuildEvent } from "../../src/index.js";
import { writeTree } from "../integration/helpers.js";
import { startBusyboxRegistry } from "../support/busybox-registry.js";
import { libraryBuild } from "../support/library-build.js";
import type { TestRegistry } from "../support/registry.js";
import { buildSkeletonBase } from "../support/skeleton-base.js";
import { removeDir, tempDir } from "../support/tmp.js";

const SKELETON = /filesystem is needed only where this COPY writes/;
const skeletonUsed = (events: BuildEvent[]): boolean =>
  events.some((e) => e.kind === "info" && SKELETON.test(e.message));
const copiedAgain = (events: BuildEvent[]): boolean =>
  events.some(
    (e) =>
      e.kind === "debug" &&
      /needs a directory where the image holds a file, or re-stamped a directory of the image; extracting the root/.test(
        e.message,
      ),
  );
/** The skeleton was used and held: the COPY was not done again on an extracted root. */
const skeletonHeld = (events: BuildEvent[]): boolean => skeletonUsed(events) && !copiedAgain(events);
/** Flags of a build of `ctx` into the OCI layout `out`, state in `state`, pulling over plain HTTP. */
const layoutBuild = (ctx: string, state: string, out: string, extra: string[] = []): string[] => [
  "--context",
  ctx,
  "--insecure",
  "--insecure-pull",
  "--no-push",
  "--kaniko-dir",
  state,
  "--oci-layout-path",
  out,
  ...extra,
];

describe("COPY on a skeleton root", () => {
  let reg: TestRegistry;
  let work: string;
  let base: string;
  before(async () => {
    ({ reg } = await startBusyboxRegistry());
    work = await tempDir("skeleton-copy");
    base = await buildSkeletonBase(reg.host, work, "skeleton/base");
  });
  after(async () => {
    await reg?.stop();
    if (work) await removeDir(work);
  });

  /** Builds `dockerfile` with and without the skeleton; returns both outcomes. */
  const both = async (name: string, dockerfile: string, extra: string[] = []) => {
    const ctx = path.join(work, name);
    await writeTree(ctx, { Dockerfile: dockerfile, "new.txt": "new\n", "dir/a": "a\n", "dir/sub/b": "b\n" });
    const args = (out: string): string[] =>
      layoutBuild(ctx, path.join(work, `${name}-state`), path.join(work, `${name}-${out}`), [
        "--reproducible",
        ...extra,
      ]);
    const skeleton = await libraryBuild(args("skeleton"));
    const extracted = await libraryBuild(args("extracted"), { options: { skeletonCopy: false } });
    assert.equal(skeletonUsed(extracted.events), false, "skeletonCopy: false extracts");
    return { skeleton, extracted };
  };

  it("under directories of the image (owned, 0750), metadata instructions after it: the same image", async () => {
    const { skeleton, extracted } = await both(
      "owned",
      `FROM ${base}\nENV A=1\nCOPY dir/ /srv/owned/more/\nLABEL after=copy\n`,
    );
    assert.ok(skeletonHeld(skeleton.events), "the last COPY used a skeleton");
    assert.equal(
      skeleton.events.some((e) => e.kind === "phase" && e.phase === "extract" && e.stage === 0),
      true,
    );
    assert.equal(skeleton.digest, extracted.digest);
  });

  it("a COPY whose destination is a symlink of the image", async () => {
    const { skeleton, extracted } = await both("via-link", `FROM ${base}\nCOPY new.txt /lnk/deeper/new.txt\n`);
    assert.ok(skeletonHeld(skeleton.events));
    assert.equal(skeleton.digest, extracted.digest);
  });

  it("a numeric --chown and --chmod", async () => {
    const { skeleton, extracted } = await both(
      "chown",
      `FROM ${base}\nCOPY --chown=1000:1000 --chmod=640 dir /srv/owned/x/\n`,
    );
    assert.ok(skeletonHeld(skeleton.events));
    assert.equal(skeleton.digest, extracted.digest);
  });

  it("a --chown by name reads /etc/passwd: the root is extracted", async () => {
    const { skeleton, extracted } = await both("named", `FROM ${base}\nCOPY --chown=app new.txt /home/app/\n`);
    assert.equal(skeletonUsed(skeleton.events), false);
    assert.equal(skeleton.digest, extracted.digest);
  });

  it("a file COPYed over a file of the image: the skeleton holds (COPY replaces what lies there)", async () => {
    const { skeleton, extracted } = await both("over-file", `FROM ${base}\nCOPY new.txt /data/file\n`);
    assert.ok(skeletonHeld(skeleton.events));
    assert.equal(skeleton.digest, extracted.digest);
  });

  it("a directory COPYed over a file of the image copies again on the extracted root", async () => {
    const { skeleton, extracted } = await both("dir-over-file", `FROM ${base}\nCOPY dir/ /data/file/\n`);
    assert.ok(skeletonUsed(skeleton.events));
    assert.ok(copiedAgain(skeleton.events), "the COPY was done again on the real root");
    assert.equal(skeleton.digest, extracted.digest);
  });

  it("an empty directory COPYed onto a directory of the image that holds files: the same image", async () => {
    // The existing /srv/owned is re-stamped with nothing written below it: its snapshot walks it, and on
    // the extracted root finds the image's file there (so kiln extracts the root and copies again).
    const { mkdir } = await import("node:fs/promises");
    await mkdir(path.join(work, "restamp", "tree2", "owned"), { recursive: true });
    const { skeleton, extracted } = await both("restamp", `FROM ${base}\nCOPY tree2/ /srv/\n`);
    assert.ok(skeletonUsed(skeleton.events));
    assert.ok(copiedAgain(skeleton.events), "the COPY was done again on the real root");
    assert.equal(skeleton.digest, extracted.digest);
  });

  it("a COPY into a path below a file of the image fails as on the extracted root", async () => {
    const ctx = path.join(work, "below-file");
    await writeTree(ctx, { Dockerfile: `FROM ${base}\nCOPY new.txt /data/file/new.txt\n`, "new.txt": "new\n" });
    const args = (o: string): string[] =>
      layoutBuild(ctx, path.join(work, "below-state"), path.join(work, `below-${o}`));
    const outcome = async (o: string, skeletonCopy: boolean): Promise<string> =>
      libraryBuild(args(o), { options: { skeletonCopy } }).then(
        (r) => `ok ${r.digest}`,
        (e: unknown) => `failed ${(e as { code?: string }).code ?? String(e)}`,
      );
    const withSkeleton = await outcome("s", true);
    const extracted = await outcome("e", false);
    assert.equal(withSkeleton.split(" ")[0], extracted.split(" ")[0], `${withSkeleton} vs ${extracted}`);
  });

  it("a stage whose later step needs the filesystem, or that another stage reads, extracts its root", async () => {
    const ctx = path.join(work, "later");
    await writeTree(ctx, {
      Dockerfile: `FROM ${base} AS one\nCOPY new.txt /n\nWORKDIR /w\nFROM ${base}\nCOPY --from=one /n /m\n`,
      "new.txt": "n\n",
    });
    const r = await libraryBuild(layoutBuild(ctx, path.join(work, "later-state"), path.join(work, "later-out")));
    const used = r.events.filter((e) => e.kind === "info" && SKELETON.test(e.message));
    // Stage 0 (WORKDIR after its COPY, and read by stage 1): extracted. Stage 1's COPY is its last step.
    assert.deepEqual(
      used.map((e) => (e.kind === "info" ? /Stage (\d+)/.exec(e.message)?.[1] : undefined)),
      ["1"],
    );
  });
});

describe(
  "COPY on a skeleton root after cache hits",
  { skip: process.getuid?.() !== 0 ? "RUN needs root" : false },
  () => {
    let reg: TestRegistry;
    let baseRef: string;
    let work: string;
    before(async () => {
      ({ reg, base: baseRef } = await startBusyboxRegistry());
      work = await tempDir("skeleton-cache");
    });
    after(async () => {
      await reg?.stop();
      if (work) await removeDir(work);
    });

    it("RUN hits, then the changed COPY: the same image as with the extracted root", async () => {
      const ctx = path.join(work, "ctx");
      const dockerfile = `FROM ${baseRef}\nRUN mkdir -p /app && echo dep > /app/dep\nCOPY src/ /app/src/\nCMD ["cat", "/app/src/main"]\n`;
      await writeTree(ctx, { Dockerfile: dockerfile, "src/main": "v1\n" });
      const args = (o: string): string[] =>
        layoutBuild(ctx, path.join(work, `state-${o}`), path.join(work, `out-${o}`), [
          "--reproducible",
          "--cache=true",
          `--cache-repo=${reg.host}/skeleton-cache/cache`,
        ]);
      const first = await libraryBuild(args("1"));
      assert.equal(skeletonUsed(first.events), false, "the first build runs the RUN: its root is extracted");
      await writeTree(ctx, { "src/main": "v2\n" });
      const second = await libraryBuild(args("2"));
      const hits = second.events.filter((e) => e.kind === "step-done" && e.cache?.status === "hit").length;
      assert.equal(hits, 1, "the RUN was a cache hit");
      assert.ok(skeletonHeld(second.events), "the COPY after the hit used a skeleton");
      const reference = await libraryBuild(args("3"), { options: { skeletonCopy: false } });
      assert.equal(second.digest, reference.digest);
      assert.notEqual(second.digest, first.digest);
    });
  },
);
