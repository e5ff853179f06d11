import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import type { Digest } from "../image/digest.js";
import type { Layer } from "../image/types.js";
import type { BuildEvent } from "./events.js";
import { retryDelayMs, retryPolicy, retryWait, withRetries } from "./retry.js";
import { openBuildLayerStore, StageRoot, unmountAllUnder } from "./stage-root.js";
import { IgnoreList, LayerStore, mountStoreOverlay, mountsUnder, walkChanges, type FileIndex } from "../fs/index.js";
import { buildTar, listTree, type Spec } from "../fs/test-helpers.js";
import { findHelper } from "../run/index.js";

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
    await new StageRoot(path.join(dir, "r1"), retryPolicy(2, 1)).ensure([ok], undefined, (e) => events.push(e), 0);
    assert.equal(ok.opens, 3);
    assert.equal(events.filter((e) => e.kind === "warning").length, 2);
    const bad = flakyLayer(tar, 2);
    const root = new StageRoot(path.join(dir, "r2"), retryPolicy(1, 1));
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

test("retries wait as kaniko's do: 1 s, then doubling; a cancelled wait ends at once", async () => {
  const kaniko = retryPolicy(3);
  assert.deepEqual(
    [1, 2, 3].map((n) => retryDelayMs(kaniko, n)),
    [1000, 2000, 4000],
  );
  assert.equal(retryPolicy(undefined).retries, 0);
  const ac = new AbortController();
  const waiting = retryWait(retryPolicy(1, 3_600_000), 1, ac.signal);
  ac.abort();
  await assert.rejects(waiting, { name: "AbortError" });
});

test("withRetries retries up to the limit and reports each retry", async () => {
  let calls = 0;
  const seen: number[] = [];
  const v = await withRetries(
    async () => {
      if (++calls < 3) throw new Error(`fail ${calls}`);
      return "ok";
    },
    retryPolicy(2, 1),
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
      retryPolicy(1, 1),
      () => {},
    ),
    /always/,
  );
  assert.equal(calls, 2);
  // A cancelled build: the failure is not retried, and not reported as a retry.
  const ac = new AbortController();
  calls = 0;
  const retried: number[] = [];
  await assert.rejects(
    withRetries(
      async () => {
        calls++;
        ac.abort();
        throw new Error("cancelled");
      },
      retryPolicy(3, 1),
      (n) => retried.push(n),
      ac.signal,
    ),
    /cancelled/,
  );
  assert.deepEqual([calls, retried], [1, []]);
});

/** A layer (real diffID) built from tar specs. */
async function specLayer(specs: readonly Spec[]): Promise<Layer> {
  const tar = await buildTar(specs);
  const diffId = `sha256:${createHash("sha256").update(tar).digest("hex")}` as Digest;
  return {
    mediaType: "application/vnd.oci.image.layer.v1.tar",
    digest: diffId,
    diffId,
    size: tar.length,
    openCompressed: () => Promise.reject(new Error("not used")),
    openUncompressed: () => Promise.resolve(Readable.from([tar])),
  };
}

/** Layers exercising every overlay translation: whiteouts, opaque dirs, implicit parents, retyping. */
async function trickyLayers(): Promise<Layer[]> {
  const t = 1_700_000_000;
  return [
    await specLayer([
      { name: "etc/", type: "dir", mode: 0o755, mtime: t },
      { name: "etc/motd", body: "hi", mtime: t },
      { name: "etc/keep", body: "keep", mode: 0o600, uid: 12, gid: 34, mtime: t },
      { name: "srv/", type: "dir", mode: 0o700, uid: 5, gid: 6, mtime: t },
      { name: "srv/old/", type: "dir", mode: 0o755, mtime: t },
      { name: "srv/old/x", body: "x", mtime: t },
      { name: "data/", type: "dir", mode: 0o750, mtime: t },
      { name: "data/a", body: "a", mtime: t },
      { name: "gone/", type: "dir", mode: 0o755, mtime: t },
      { name: "gone/deep", body: "d", mtime: t },
      { name: "bin/", type: "dir", mode: 0o755, mtime: t },
      { name: "bin/busybox", body: "#!bb", mode: 0o755, mtime: t },
      { name: "bin/sh", type: "symlink", linkname: "busybox", mtime: t },
      { name: "bin/ash", type: "hardlink", linkname: "bin/busybox", mtime: t },
      { name: "retype", type: "dir", mode: 0o755, mtime: t },
      { name: "retype/child", body: "c", mtime: t },
    ]),
    await specLayer([
      { name: "etc/.wh.motd", body: "" },
      { name: "data/", type: "dir", mode: 0o750, mtime: t + 5 },
      { name: "data/.wh..wh..opq", body: "" },
      { name: "data/b", body: "b", mtime: t + 5 },
      { name: ".wh.gone", body: "" },
      { name: "srv/old/y", body: "y", mtime: t + 5 }, // srv and srv/old only implied: lower metadata wins
      { name: "retype", body: "now a file", mtime: t + 5 },
      { name: "new/dir/z", body: "z", mtime: t + 5 },
    ]),
  ];
}

/**
 * Index entries without the fields that differ by nature (inode, ctime, device) and without directory
 * mtimes: extraction moves those when it deletes or adds children of lower directories (the overlay
 * keeps the layer's own times, as Docker's graph drivers do).
 */
function comparable(index: FileIndex): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const p of [...index.paths()].sort()) {
    const e = index.get(p);
    if (e) out.set(p, [e.type, e.mode, e.uid, e.gid, e.size, e.type === "dir" ? 0n : e.mtimeNs, e.linkTarget]);
  }
  return out;
}

test(
  "with the layer store a root is an overlay mount whose index equals extraction's",
  { skip: process.getuid?.() !== 0 || findHelper() === undefined },
  async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "kiln-sr-store-"));
    const helper = findHelper() as string;
    try {
      const layers = await trickyLayers();
      const plain = new StageRoot(path.join(dir, "plain"));
      await plain.ensure(layers, undefined, () => undefined, 0);
      const store = await LayerStore.open(path.join(dir, "store"), { maxBytes: 1 << 30 });
      const events: BuildEvent[] = [];
      const mounted = new StageRoot(path.join(dir, "mounted"), undefined, undefined, {
        store,
        mountHelper: () => Promise.resolve(helper),
      });
      await mounted.ensure(layers, undefined, (e) => events.push(e), 0);
      assert.ok(mounted.mounted);
      assert.deepEqual(await listTree(mounted.dir), await listTree(plain.dir), "same tree");
      assert.deepEqual(comparable(mounted.index), comparable(plain.index), "same index");
      assert.equal(await readFile(path.join(mounted.dir, "retype"), "utf8"), "now a file");
      // The rebuilt index matches lstat through the mount: a walk finds nothing changed.
      const changes = await walkChanges(mounted.dir, mounted.index, { engine: "node" });
      assert.deepEqual(changes, { changed: [], deleted: [], opaqueDirs: [] });
      assert.ok(
        events.some((e) => e.kind === "phase" && e.phase === "extract"),
        "misses extract",
      );

      // Writes go to the upper; the stored trees never change.
      await writeFile(path.join(mounted.dir, "etc", "keep"), "changed");
      await rm(path.join(mounted.dir, "bin", "sh"));
      const tree0 = path.join(store.layersDir, layers[0]!.diffId.slice(7), "tree");
      assert.equal(await readFile(path.join(tree0, "etc", "keep"), "utf8"), "keep");
      assert.ok((await lstat(path.join(tree0, "bin", "sh"))).isSymbolicLink());

      // A handed-over root stays mounted; remove() unmounts.
      const next = mounted.handOver();
      assert.ok(next.mounted && !mounted.mounted);
      await next.remove();
      assert.equal((await readFile("/proc/self/mountinfo", "utf8")).includes(next.dir), false);

      // Second use: every layer is a hit, no extract phase.
      const again: BuildEvent[] = [];
      const warm = new StageRoot(path.join(dir, "warm"), undefined, undefined, {
        store,
        mountHelper: () => Promise.resolve(helper),
      });
      await warm.ensure(layers, undefined, (e) => again.push(e), 0);
      assert.ok(!again.some((e) => e.kind === "phase" && e.phase === "extract"));
      assert.ok(again.some((e) => e.kind === "info" && e.message.includes("2 of 2 layers")));
      assert.deepEqual(comparable(warm.index), comparable(plain.index));
      const warmChanges = await walkChanges(warm.dir, warm.index, { engine: "node" });
      assert.deepEqual(warmChanges, { changed: [], deleted: [], opaqueDirs: [] }, "stack index matches lstat");
      await warm.remove();

      // A root a RUN started in the background while the build stopped: every layer is a hit (which
      // ignores the signal), but nothing is mounted once the build's signal is aborted.
      const stopped = new AbortController();
      stopped.abort(new Error("the build failed"));
      const late = new StageRoot(path.join(dir, "late"), undefined, undefined, {
        store,
        mountHelper: () => Promise.resolve(helper),
      });
      await assert.rejects(
        late.ensure(layers, undefined, () => undefined, 0, stopped.signal),
        /the build failed/,
      );
      assert.equal(
        (await readFile("/proc/self/mountinfo", "utf8")).includes(late.dir),
        false,
        "mounted after the stop",
      );

      // A damaged stack index and a damaged layer index: both detected, the layer re-extracted (by a later
      // build: while a stage of this one holds an entry, it is not deleted under it).
      await store.release();
      const top = path.join(store.layersDir, layers[1]!.diffId.slice(7));
      const [stackFile] = await readdir(path.join(top, "stacks"));
      await writeFile(path.join(top, "stacks", stackFile!), "damaged");
      await writeFile(path.join(store.layersDir, layers[0]!.diffId.slice(7), "index.bin"), "damaged");
      const repaired = new StageRoot(path.join(dir, "repaired"), undefined, undefined, {
        store,
        mountHelper: () => Promise.resolve(helper),
      });
      await repaired.ensure(layers, undefined, () => undefined, 0);
      assert.ok(repaired.mounted);
      assert.deepEqual(comparable(repaired.index), comparable(plain.index));
      const repairedChanges = await walkChanges(repaired.dir, repaired.index, { engine: "node" });
      assert.deepEqual(repairedChanges, { changed: [], deleted: [], opaqueDirs: [] });
      await repaired.remove();

      // Ignored paths are left out of a mounted root's index as extraction leaves them out.
      const ignore = IgnoreList.create({ volumes: ["/srv/old"], ignorePaths: ["/bin/s*"] });
      const plainIgnored = new StageRoot(path.join(dir, "plain-ignored"));
      await plainIgnored.ensure(layers, ignore, () => undefined, 0);
      const ignored = new StageRoot(path.join(dir, "ignored"), undefined, undefined, {
        store,
        mountHelper: () => Promise.resolve(helper),
      });
      await ignored.ensure(layers, ignore, () => undefined, 0);
      assert.ok(!ignored.index.has("/srv/old/x") && !ignored.index.has("/bin/sh") && ignored.index.has("/bin/ash"));
      assert.deepEqual(comparable(ignored.index), comparable(plainIgnored.index));
      await ignored.remove();
      await store.release();
    } finally {
      await unmountAllUnder(dir, helper);
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test(
  "opening the store for a build unmounts and deletes store mounts that a dead build left behind",
  { skip: process.getuid?.() !== 0 || findHelper() === undefined },
  async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "kiln-sr-stale-"));
    const helper = findHelper() as string;
    try {
      const state = path.join(dir, "state");
      const dead = path.join(state, "build-dead");
      const live = path.join(state, "build-live");
      for (const b of [dead, live]) {
        for (const d of ["lower", "upper", "work", "stage-0"]) await mkdir(path.join(b, d), { recursive: true });
        await writeFile(path.join(b, "lower", "f"), "x");
      }
      const deadPid = Number(
        execFileSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }),
      );
      await writeFile(path.join(dead, "kiln.pid"), String(deadPid));
      await writeFile(path.join(live, "kiln.pid"), String(process.pid));
      for (const b of [dead, live]) {
        await mountStoreOverlay(helper, {
          base: b,
          lowers: ["lower"],
          upper: path.join(b, "upper"),
          work: path.join(b, "work"),
          target: path.join(b, "stage-0"),
        });
      }
      const runDir = path.join(state, "build-mine");
      await mkdir(runDir);
      const s = await openBuildLayerStore(
        { dir: path.join(dir, "store"), maxBytes: 1 << 30 },
        state,
        runDir,
        () => undefined,
        () => Promise.resolve(true),
      );
      assert.deepEqual(await mountsUnder(state), [path.join(live, "stage-0")], "only the live build's mount is left");
      await assert.rejects(lstat(dead), "the dead build's directory is gone");
      assert.equal(await readFile(path.join(runDir, "kiln.pid"), "utf8"), String(process.pid));
      await s.close();
    } finally {
      await unmountAllUnder(dir, helper);
      await rm(dir, { recursive: true, force: true });
    }
  },
);
