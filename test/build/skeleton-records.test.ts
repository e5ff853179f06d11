/**
 * Skeleton records: a build that reaches a skeleton COPY stores the filesystem before it (directories and
 * symlinks with their metadata, other paths by type) in the cache under that filesystem's chain key; a later
 * build without local state lays out from it only what its COPY resolves. Every case must give the image
 * the extracted root gives (`skeletonCopy: false`), fall back where a full skeleton falls back, and fail
 * where the extracted root fails. Real docker-registry; `--reproducible` so that digests compare.
 */
import * as assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import * as path from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import type { BuildEvent } from "../../src/index.js";
import { readTar } from "../../src/image/index.js";
import { writeTree } from "../integration/helpers.js";
import { startBusyboxRegistry } from "../support/busybox-registry.js";
import { libraryBuild } from "../support/library-build.js";
import type { TestRegistry } from "../support/registry.js";
import { damageFile, layoutLayerFile } from "../support/layout-files.js";
import { buildSkeletonBase, podFlags } from "../support/skeleton-base.js";
import { removeDir, tempDir } from "../support/tmp.js";

const info = (events: BuildEvent[], re: RegExp): boolean => events.some((e) => e.kind === "info" && re.test(e.message));
const fromRecord = (events: BuildEvent[]): boolean => info(events, /come from the skeleton record in /);
const laidOutInFull = (events: BuildEvent[]): boolean => info(events, /laid out its \d+ layers' directories/);
const copiedAgain = (events: BuildEvent[]): boolean =>
  events.some((e) => e.kind === "debug" && /extracting the root and copying again/.test(e.message));

describe("COPY on a skeleton laid out from the cache's record", () => {
  let reg: TestRegistry;
  let busybox: string;
  let work: string;
  let base: string;
  let n = 0;
  before(async () => {
    ({ reg, base: busybox } = await startBusyboxRegistry());
    work = await tempDir("skeleton-records");
    base = await buildSkeletonBase(reg.host, work, "records/base");
  });
  after(async () => {
    await reg?.stop();
    if (work) await removeDir(work);
  });

  /** Builds `dockerfile` in a pod without state: the first time, again (from the record), and extracted. */
  const three = async (
    name: string,
    dockerfile: string,
    extra: string[] = [],
    setup?: (ctx: string) => Promise<void>,
    reproducible = true,
  ) => {
    const ctx = path.join(work, name);
    await writeTree(ctx, { Dockerfile: dockerfile, "new.txt": "new\n", "dir/a": "a\n", "dir/sub/b": "b\n" });
    await setup?.(ctx);
    const cache = `${reg.host}/records/${name}-cache`;
    const build = (skeletonCopy: boolean) => {
      n++;
      const out = `out-${n}`;
      const flags = podFlags(ctx, cache, path.join(work, `state-${n}`), path.join(work, out), reproducible);
      return libraryBuild([...flags, ...extra], { options: { skeletonCopy } }).then(
        (r) => ({ ok: true as const, out, ...r }),
        (e: unknown) => ({ ok: false as const, code: (e as { code?: string }).code ?? String(e) }),
      );
    };
    const first = await build(true);
    const again = await build(true);
    const extracted = await build(false);
    return { first, again, extracted };
  };

  /** The record was used, held (no second COPY), and gave the extracted root's image. */
  const assertSame = (r: Awaited<ReturnType<typeof three>>, held = true): void => {
    assert.ok(
      r.first.ok && r.again.ok && r.extracted.ok,
      JSON.stringify([r.first, r.again, r.extracted].map((x) => x.ok)),
    );
    assert.ok(laidOutInFull(r.first.events) && !fromRecord(r.first.events), "no record yet: laid out in full");
    assert.ok(fromRecord(r.again.events), "the second pod read the record");
    assert.equal(copiedAgain(r.again.events), !held);
    assert.equal(r.first.digest, r.extracted.digest);
    assert.equal(r.again.digest, r.extracted.digest);
  };

  it("through a relative and an absolute symlink of the image", async () => {
    assertSame(await three("links", `FROM ${base}\nCOPY dir/ /lnk/deeper/\n`));
    assertSame(await three("abs-link", `FROM ${base}\nCOPY new.txt /abs/new.txt\n`));
  });

  it("under owned 0750 directories, with a numeric --chown and --chmod", async () => {
    assertSame(await three("owned", `FROM ${base}\nCOPY --chown=1000:1000 --chmod=640 dir /srv/owned/x/\n`));
  });

  it("into existing directories of the image, writing below a nested one", async () => {
    const r = await three("merge", `FROM ${base}\nCOPY tree3/ /real/\n`, [], async (ctx) => {
      await writeTree(ctx, { "tree3/nested/more": "more\n", "tree3/top": "top\n" });
    });
    assertSame(r);
  });

  it("a file over a file of the image holds; a directory over it copies again", async () => {
    assertSame(await three("over-file", `FROM ${base}\nCOPY new.txt /data/file\n`));
    assertSame(await three("dir-over-file", `FROM ${base}\nCOPY dir/ /data/file/\n`), false);
  });

  it("an empty directory re-stamping a directory of the image copies again", async () => {
    const r = await three("restamp", `FROM ${base}\nCOPY tree2/ /srv/\n`, [], async (ctx) => {
      await mkdir(path.join(ctx, "tree2", "owned"), { recursive: true });
    });
    assertSame(r, false);
  });

  it("a COPY below a file of the image fails as on the extracted root", async () => {
    const r = await three("below-file", `FROM ${base}\nCOPY new.txt /data/file/new.txt\n`);
    assert.equal(r.extracted.ok, false);
    assert.equal(r.first.ok, false);
    assert.equal(r.again.ok, false);
    if (!r.again.ok && !r.extracted.ok) assert.equal(r.again.code, r.extracted.code);
  });

  it(
    "after cached RUNs: the record comes from the extracted root of the build that ran them",
    { skip: process.getuid?.() !== 0 ? "RUN needs root" : false },
    async () => {
      const r = await three(
        "after-run",
        `FROM ${busybox}\nRUN mkdir -p /app/sub && ln -s sub /app/link && chmod 0700 /app/sub\nCOPY new.txt /app/link/x\n`,
      );
      assert.ok(r.first.ok && r.again.ok && r.extracted.ok);
      assert.ok(!laidOutInFull(r.first.events) && !fromRecord(r.first.events), "the RUN ran on the extracted root");
      assert.ok(fromRecord(r.again.events), "the RUN was a cache hit and the record stood in for the root");
      assert.equal(copiedAgain(r.again.events), false);
      assert.equal(r.again.digest, r.extracted.digest);
      assert.equal(r.first.digest, r.extracted.digest);
    },
  );

  it("without --reproducible: the COPY layer's entries, times included, are the extracted root's", async () => {
    // /real (a directory of the image) receives a new directory first, then a lazily created one: the time
    // the first gave /real must stay, as on the extracted root.
    const t0 = Math.floor(Date.now() / 1000) - 5;
    const r = await three(
      "times",
      `FROM ${base}\nCOPY conf/ /real/\n`,
      [],
      async (ctx) => {
        await writeTree(ctx, { "conf/aaa/x": "x\n", "conf/nested/y": "y\n" });
      },
      false,
    );
    assert.ok(r.first.ok && r.again.ok && r.extracted.ok);
    assert.ok(fromRecord(r.again.events));
    const want = await copyLayerEntries(path.join(work, r.extracted.out), t0);
    assert.ok(
      want.some((l) => l.startsWith("real/ dir") && l.endsWith(" recent")),
      want.join("\n"),
    );
    assert.deepEqual(await copyLayerEntries(path.join(work, r.again.out), t0), want);
    assert.deepEqual(await copyLayerEntries(path.join(work, r.first.out), t0), want);
  });

  it("a record that does not decode is a warning, and the build writes a good one over it", async () => {
    const r = await three("undecodable", `FROM ${base}\nCOPY new.txt /lnk/u\n`);
    assertSame(r);
    const repo = "records/undecodable-cache";
    const tags = ((await (await fetch(`${reg.url}/v2/${repo}/tags/list`)).json()) as { tags: string[] }).tags;
    const tag = tags.find((t) => t.startsWith("skel1-"));
    assert.ok(tag);
    const accept = { accept: "application/vnd.oci.image.manifest.v1+json" };
    const manifest = JSON.parse(
      await (await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, { headers: accept })).text(),
    ) as {
      layers: { digest: string; size: number }[];
      annotations: Record<string, string>;
    };
    // The same record, but its layer is gzip'd garbage (a valid blob whose content is no index).
    const garbage = gzipSync(Buffer.from("not a columnar index"));
    const digest = `sha256:${createHash("sha256").update(garbage).digest("hex")}`;
    const start = await fetch(`${reg.url}/v2/${repo}/blobs/uploads/`, { method: "POST" });
    assert.equal(start.status, 202);
    const location = new URL(start.headers.get("location") ?? "", reg.url);
    location.searchParams.set("digest", digest);
    const up = await fetch(location, {
      method: "PUT",
      headers: { "content-type": "application/octet-stream" },
      body: garbage,
    });
    assert.equal(up.status, 201);
    const record = JSON.parse(manifest.annotations["dev.kiln.cache.skeleton"] ?? "{}") as Record<string, unknown>;
    record["diffId"] = `sha256:${createHash("sha256").update(gunzipSync(garbage)).digest("hex")}`;
    const bad = {
      ...manifest,
      layers: [{ ...manifest.layers[0], digest, size: garbage.length }],
      annotations: { "dev.kiln.cache.skeleton": JSON.stringify(record) },
    };
    const put = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, {
      method: "PUT",
      headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
      body: JSON.stringify(bad),
    });
    assert.equal(put.status, 201);
    const again = await three("undecodable", `FROM ${base}\nCOPY new.txt /lnk/u\n`);
    assert.ok(again.first.ok && again.again.ok && again.extracted.ok);
    assert.ok(
      again.first.events.some((e) => e.kind === "warning" && e.code === "SKELETON_RECORD_UNUSABLE"),
      "the undecodable record was reported",
    );
    assert.ok(laidOutInFull(again.first.events));
    assert.ok(fromRecord(again.again.events), "the next pod read the record written over it");
    assert.equal(again.first.digest, again.extracted.digest);
    assert.equal(again.again.digest, again.extracted.digest);
  });

  it("a damaged record is a warning and the layers are read", async () => {
    const ctx = path.join(work, "damaged");
    await writeTree(ctx, { Dockerfile: `FROM ${base}\nCOPY new.txt /lnk/n\n`, "new.txt": "n\n" });
    const cacheDir = path.join(work, "damaged-cache");
    const args = (i: number) => [
      "--context",
      ctx,
      "--insecure-pull",
      "--no-push",
      "--reproducible",
      "--cache=true",
      `--cache-repo=oci:${cacheDir}`,
      "--kaniko-dir",
      path.join(work, `damaged-state-${i}`),
      "--oci-layout-path",
      path.join(work, `damaged-out-${i}`),
    ];
    const first = await libraryBuild(args(1));
    const { readdir } = await import("node:fs/promises");
    const dir = (await readdir(work)).find((d) => d.startsWith("damaged-cache:skel1-"));
    assert.ok(dir, "the record is an OCI layout of its own");
    await damageFile(await layoutLayerFile(path.join(work, dir), 0), 40);
    const second = await libraryBuild(args(2));
    assert.ok(
      second.events.some((e) => e.kind === "warning" && /reading skeleton record .* failed/.test(e.message)),
      "the damaged record was reported",
    );
    assert.ok(!fromRecord(second.events) && laidOutInFull(second.events));
    assert.equal(second.digest, first.digest);
  });
});

/**
 * The entries of the last layer of the OCI layout `dir`: name, type, mode, owner and time, a time from
 * `since` on written as "recent" (the build's own).
 */
async function copyLayerEntries(dir: string, since: number): Promise<string[]> {
  const tar = gunzipSync(await readFile(await layoutLayerFile(dir, -1)));
  const out: string[] = [];
  for await (const e of readTar(Readable.from([tar]))) {
    const h = e.header;
    out.push(`${h.name} ${h.type} ${h.mode.toString(8)} ${h.uid}:${h.gid} ${h.mtime >= since ? "recent" : h.mtime}`);
    e.body.resume();
  }
  return out;
}
