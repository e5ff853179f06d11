/**
 * Header copies in the cache: a build that reads a base layer whole (extraction or skeleton) stores the layer's
 * tar without file bodies in the cache, and a later build with no local state lays out its skeleton root from
 * that copy instead of downloading the layer. The image must be the one the extracted root gives; a missing,
 * foreign or corrupt copy must change nothing but the time. Real docker-registry and OCI-layout backends.
 */
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdir, rm, symlink, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import type { BuildEvent } from "../../src/index.js";
import { writeTree } from "../integration/helpers.js";
import { libraryBuild } from "../support/library-build.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { damageFile, layoutLayerFile } from "../support/layout-files.js";
import { podFlags } from "../support/skeleton-base.js";
import { removeDir, tempDir } from "../support/tmp.js";

const FROM_COPIES = /laid out its 1 layers' directories and symlinks \(\d+ paths; 1 read from header copies in /;
const readFromCopies = (events: BuildEvent[]): boolean =>
  events.some((e) => e.kind === "info" && FROM_COPIES.test(e.message));
const unusable = (events: BuildEvent[]): boolean =>
  events.some((e) => e.kind === "warning" && e.code === "HEADER_COPY_UNUSABLE");
const skeletonUsed = (events: BuildEvent[]): boolean =>
  events.some((e) => e.kind === "info" && /filesystem is needed only where this COPY writes/.test(e.message));

describe("header copies of base layers in the cache", () => {
  let reg: TestRegistry;
  let work: string;
  let base: string;
  let baseLayerSize: number;
  let ctx: string;
  let run = 0;
  before(async () => {
    reg = await startRegistry();
    work = await tempDir("header-copies");
    // A base whose one layer is worth a copy (2 MiB that do not compress), with a directory symlink and an
    // owned directory for the COPY to go through.
    const baseCtx = path.join(work, "base-ctx");
    await writeTree(baseCtx, {
      Dockerfile: "FROM scratch\nCOPY tree/ /\nCOPY --chown=5:6 --chmod=750 owned/ /srv/owned/\n",
      "tree/real/keep": "keep\n",
      "owned/inner": "inner\n",
    });
    await writeFile(path.join(baseCtx, "tree", "real", "blob.bin"), randomBytes(2 * 1024 * 1024));
    await symlink("real", path.join(baseCtx, "tree", "lnk"));
    base = `${reg.host}/hc/base:1`;
    await libraryBuild([
      "--context",
      baseCtx,
      "--destination",
      base,
      "--insecure",
      "--reproducible",
      "--single-snapshot",
    ]);
    const manifest = (await (
      await fetch(`${reg.url}/v2/hc/base/manifests/1`, {
        headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
      })
    ).json()) as { layers: { size: number }[] };
    assert.equal(manifest.layers.length, 1);
    baseLayerSize = manifest.layers[0]?.size ?? 0;
    assert.ok(baseLayerSize > 2 * 1024 * 1024);
    ctx = path.join(work, "ctx");
    await writeTree(ctx, { Dockerfile: `FROM ${base}\nCOPY new.txt /lnk/sub/new.txt\n` });
  });
  after(async () => {
    await reg?.stop();
    if (work) await removeDir(work);
  });

  /** A build of `ctx` with a new new.txt, fresh state (an ephemeral pod), into an OCI layout. */
  const pod = async (cacheRepo: string, options: { skeletonCopy?: boolean } = {}, content = `run ${run}\n`) => {
    run++;
    await writeFile(path.join(ctx, "new.txt"), content);
    return libraryBuild(podFlags(ctx, cacheRepo, path.join(work, `state-${run}`), path.join(work, `out-${run}`)), {
      options,
    });
  };
  /**
   * Removes the skeleton records a build left in `cacheRepo` (they would stand in for the copies: a later
   * build of the same Dockerfile lays its skeleton out from the record).
   */
  const dropRecords = async (cacheRepo: string): Promise<void> => {
    if (cacheRepo.startsWith("oci:") || cacheRepo.startsWith("dir:")) {
      const base = cacheRepo.slice(4);
      const dir = cacheRepo.startsWith("oci:") ? path.dirname(base) : path.join(base, "refs");
      const prefix = cacheRepo.startsWith("oci:") ? `${path.basename(base)}:skel1-` : "skel1-";
      for (const n of await readdir(dir)) if (n.startsWith(prefix)) await rm(path.join(dir, n), { recursive: true });
      return;
    }
    const repo = cacheRepo.slice(reg.host.length + 1);
    for (const t of (await tags(repo)).filter((x) => x.startsWith("skel1-"))) {
      const head = await fetch(`${reg.url}/v2/${repo}/manifests/${t}`, {
        method: "HEAD",
        headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
      });
      const digest = head.headers.get("docker-content-digest");
      assert.ok(digest);
      const del = await fetch(`${reg.url}/v2/${repo}/manifests/${digest}`, { method: "DELETE" });
      assert.equal(del.status, 202);
    }
  };
  const tags = async (repo: string): Promise<string[]> => {
    const r = await fetch(`${reg.url}/v2/${repo}/tags/list`);
    return r.status === 404 ? [] : (((await r.json()) as { tags: string[] | null }).tags ?? []);
  };

  it("a skeleton build stores the copy; the next pod reads it and builds the same image", async () => {
    const cache = `${reg.host}/hc/cache`;
    const first = await pod(cache);
    assert.ok(skeletonUsed(first.events) && !readFromCopies(first.events), "no copy yet: the layer was read");
    const copies = (await tags("hc/cache")).filter((t) => t.startsWith("hdr1-"));
    assert.equal(copies.length, 1, "one copy, of the one base layer");
    const m = (await (
      await fetch(`${reg.url}/v2/hc/cache/manifests/${copies[0]}`, {
        headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
      })
    ).json()) as { layers: { size: number }[] };
    assert.ok((m.layers[0]?.size ?? Infinity) < baseLayerSize / 100, "the copy holds headers only");

    await dropRecords(cache);
    const again = await pod(cache, {}, "same\n");
    assert.ok(readFromCopies(again.events), "the skeleton was laid out from the copy");
    const extracted = await pod(cache, { skeletonCopy: false }, "same\n");
    assert.equal(again.digest, extracted.digest, "the same image as on the extracted root");
  });

  it("an extraction stores the copy too; a copy recorded for another layer is ignored, then replaced", async () => {
    const cache = `${reg.host}/hc/cache2`;
    await pod(cache, { skeletonCopy: false });
    const copy = (await tags("hc/cache2")).find((t) => t.startsWith("hdr1-"));
    assert.ok(copy, "the extraction's headers were stored");
    // The copy under its own tag in hc/cache3, but with a record naming another layer.
    const accept = { accept: "application/vnd.oci.image.manifest.v1+json" };
    const raw = await (await fetch(`${reg.url}/v2/hc/cache2/manifests/${copy}`, { headers: accept })).text();
    const parsed = JSON.parse(raw) as { config: { digest: string }; layers: { digest: string }[] };
    for (const d of [parsed.config.digest, ...parsed.layers.map((l) => l.digest)]) {
      const r = await fetch(`${reg.url}/v2/hc/cache3/blobs/uploads/?mount=${d}&from=hc/cache2`, { method: "POST" });
      assert.equal(r.status, 201, `mount ${d}`);
    }
    const tampered = raw.replace(/"of\\":\\"sha256:[0-9a-f]{64}/, `"of\\":\\"sha256:${"cd".repeat(32)}`);
    assert.notEqual(tampered, raw);
    const put = await fetch(`${reg.url}/v2/hc/cache3/manifests/${copy}`, {
      method: "PUT",
      headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
      body: tampered,
    });
    assert.equal(put.status, 201);
    const foreign = await pod(`${reg.host}/hc/cache3`);
    assert.ok(skeletonUsed(foreign.events) && !readFromCopies(foreign.events), "the foreign copy was not used");
    assert.equal(unusable(foreign.events), false);
    // That build read the layer and stored its own copy over the foreign one.
    await dropRecords(`${reg.host}/hc/cache3`);
    const next = await pod(`${reg.host}/hc/cache3`);
    assert.ok(readFromCopies(next.events));
  });

  it("a dir: cache holds copies too", async () => {
    const cache = `dir:${path.join(work, "dir-cache")}`;
    assert.equal(readFromCopies((await pod(cache)).events), false);
    await dropRecords(cache);
    const again = await pod(cache, {}, "same\n");
    assert.ok(readFromCopies(again.events));
    assert.equal(again.digest, (await pod(cache, { skeletonCopy: false }, "same\n")).digest);
  });

  it("a corrupt copy in an OCI-layout cache: a warning, the layer is read, the same image", async () => {
    const cacheDir = path.join(work, "oci-cache");
    await pod(`oci:${cacheDir}`);
    const names = (await import("node:fs/promises")).readdir(work);
    const dir = (await names).find((n) => n.startsWith("oci-cache:hdr1-"));
    assert.ok(dir, "the copy is an OCI layout of its own");
    await damageFile(await layoutLayerFile(path.join(work, dir), 0), 64);

    await dropRecords(`oci:${cacheDir}`);
    const broken = await pod(`oci:${cacheDir}`, {}, "same\n");
    assert.ok(unusable(broken.events), "the corrupt copy was reported");
    assert.ok(skeletonUsed(broken.events) && !readFromCopies(broken.events));
    const extracted = await pod(`oci:${cacheDir}`, { skeletonCopy: false }, "same\n");
    assert.equal(broken.digest, extracted.digest);
    // The build that met the corrupt copy read the layer and wrote a good copy over it.
    await dropRecords(`oci:${cacheDir}`);
    const next = await pod(`oci:${cacheDir}`, {}, "same\n");
    assert.ok(readFromCopies(next.events) && !unusable(next.events));
    assert.equal(next.digest, extracted.digest);
  });
});
