import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import type { Digest } from "../image/digest.js";
import type { Layer } from "../image/types.js";
import type { BuildEvent } from "./events.js";
import { withRetries } from "./retry.js";
import { StageRoot } from "./stage-root.js";

async function tarOf(files: Record<string, string>): Promise<Buffer> {
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-sr-src-"));
  try {
    for (const [name, content] of Object.entries(files)) await writeFile(path.join(dir, name), content);
    return execFileSync("tar", ["--format=pax", "-cf", "-", "-C", dir, ...Object.keys(files)]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A layer whose first `failures` opens yield a stream that breaks mid-way; counts its opens. */
function flakyLayer(tar: Buffer, failures: number): Layer & { opens: number } {
  const digest = `sha256:${"0".repeat(64)}` as Digest;
  const layer = {
    mediaType: "application/vnd.oci.image.layer.v1.tar",
    digest,
    diffId: digest,
    size: tar.length,
    opens: 0,
    openCompressed: () => Promise.reject(new Error("not used")),
    openUncompressed: async () => {
      layer.opens++;
      if (layer.opens <= failures) {
        return new Readable({
          read() {
            this.destroy(new Error("connection reset"));
          },
        });
      }
      return Readable.from([tar]);
    },
  };
  return layer;
}

test("concurrent ensure calls share one extraction", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-sr-"));
  try {
    const layer = flakyLayer(await tarOf({ "a.txt": "a\n" }), 0);
    const root = new StageRoot(path.join(dir, "root"));
    const events: BuildEvent[] = [];
    await Promise.all([1, 2, 3].map(() => root.ensure([layer], undefined, (e) => events.push(e), 0)));
    assert.equal(layer.opens, 1);
    assert.equal(await readFile(path.join(dir, "root", "a.txt"), "utf8"), "a\n");
    assert.ok(root.index.has("/a.txt"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a failed extraction is retried from scratch (--image-fs-extract-retry), then fails", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-sr-"));
  try {
    const tar = await tarOf({ "b.txt": "b\n" });
    const events: BuildEvent[] = [];
    const ok = flakyLayer(tar, 2);
    await new StageRoot(path.join(dir, "r1"), 2).ensure([ok], undefined, (e) => events.push(e), 0);
    assert.equal(ok.opens, 3);
    assert.equal(events.filter((e) => e.kind === "warning").length, 2);
    const bad = flakyLayer(tar, 2);
    const root = new StageRoot(path.join(dir, "r2"), 1);
    await assert.rejects(
      root.ensure([bad], undefined, () => {}, 0),
      /connection reset/,
    );
    assert.equal(bad.opens, 2);
    assert.equal(root.materialized, false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("handOver moves a materialised root and its index to the next stage", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-sr-"));
  try {
    const layer = flakyLayer(await tarOf({ "c.txt": "c\n" }), 0);
    const root = new StageRoot(path.join(dir, "root"));
    assert.throws(() => root.handOver(), /handed over before extraction/);
    await root.ensure([layer], undefined, () => {}, 0);
    const next = root.handOver();
    assert.equal(next.dir, root.dir);
    assert.ok(next.materialized && next.index.has("/c.txt"));
    await next.ensure([layer], undefined, () => {}, 1);
    assert.equal(layer.opens, 1, "no re-extraction");
    await assert.rejects(
      root.ensure([layer], undefined, () => {}, 0),
      /was handed over/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("withRetries retries up to the limit and reports each retry", async () => {
  let calls = 0;
  const seen: number[] = [];
  const v = await withRetries(
    async () => {
      if (++calls < 3) throw new Error(`fail ${calls}`);
      return "ok";
    },
    2,
    (n) => seen.push(n),
  );
  assert.equal(v, "ok");
  assert.deepEqual(seen, [1, 2]);
  calls = 0;
  await assert.rejects(
    withRetries(
      async () => {
        calls++;
        throw new Error("always");
      },
      1,
      () => {},
    ),
    /always/,
  );
  assert.equal(calls, 2);
});
