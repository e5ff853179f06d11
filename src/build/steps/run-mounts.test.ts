import * as assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { pathExists } from "../../common/path-exists.js";
import { DirContext } from "../../context/index.js";
import type { RunMount as MountSpec } from "../../dockerfile/index.js";
import { lockFile, type Unlock } from "./run-cache-lock.js";
import { cacheMountDir, prepareMounts, type PreparedMounts } from "./run-mounts.js";
import type { StepContext } from "./step-context.js";

/** How long a test waits for prepareMounts before it counts as deadlocked. */
const DEADLOCK_MS = 5000;

/** A scratch area with a build context holding `data/` (three files) and a cache-mount root. */
async function fixture(): Promise<{ base: string; ctxDir: string; cacheRoot: string; cleanup: () => Promise<void> }> {
  const base = await mkdtemp(path.join(tmpdir(), "kiln-run-mounts-"));
  const ctxDir = path.join(base, "ctx");
  await mkdir(path.join(ctxDir, "data"), { recursive: true });
  for (const name of ["a.txt", "boom.txt", "c.txt"]) await writeFile(path.join(ctxDir, "data", name), name);
  return {
    base,
    ctxDir,
    cacheRoot: path.join(base, "cache-mounts"),
    cleanup: () => rm(base, { recursive: true, force: true }),
  };
}

/** The part of a StepContext prepareMounts reads. */
function stepContext(
  cacheRoot: string,
  context: DirContext,
  fromRoot: (ref: string) => Promise<DirContext>,
  signal?: AbortSignal,
): StepContext {
  const opts = { cacheMountsDir: cacheRoot, stateDir: path.dirname(cacheRoot), env: {}, secrets: [] };
  return { opts, context, fromRoot, signal } as unknown as StepContext;
}

function cacheSpec(id: string, extra: Partial<MountSpec> = {}): MountSpec {
  return { type: "cache", id, target: `/c/${id}`, raw: `type=cache,id=${id}`, ...extra };
}

/** A fresh, empty scratch directory for one prepareMounts call. */
async function scratchDir(base: string): Promise<string> {
  return mkdtemp(path.join(base, "scratch-"));
}

/** prepareMounts that fails (aborting its lock waits) instead of hanging when it deadlocks. */
async function prepareOrTimeout(
  specs: MountSpec[],
  make: (signal: AbortSignal) => StepContext,
  scratch: string,
): Promise<PreparedMounts> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), DEADLOCK_MS);
  try {
    return await prepareMounts(specs, make(ac.signal), "/", scratch);
  } catch (e) {
    if (ac.signal.aborted) assert.fail(`deadlock: prepareMounts did not finish in ${DEADLOCK_MS} ms`);
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** True when nobody holds the flock on `file`. */
async function lockIsFree(file: string): Promise<boolean> {
  const unlock = await lockFile(file, false);
  await unlock?.();
  return unlock !== undefined;
}

test("a cache seed that fails mid-way leaves no cache directory; the next build seeds it fully", async () => {
  const f = await fixture();
  try {
    const failing = await DirContext.open(f.ctxDir, []);
    const isExcluded = failing.isExcluded.bind(failing);
    failing.isExcluded = (rel: string): boolean => {
      if (rel === "data/boom.txt") throw new Error("copy aborted");
      return isExcluded(rel);
    };
    const spec = cacheSpec("seeded", { source: "data", mode: 0o750 });
    const dir = cacheMountDir(f.cacheRoot, "seeded");
    const noFrom = (): Promise<DirContext> => Promise.reject(new Error("no from="));
    await assert.rejects(
      prepareMounts([spec], stepContext(f.cacheRoot, failing, noFrom), "/", await scratchDir(f.base)),
      /copy aborted/,
    );
    assert.equal(await pathExists(dir), false, "a half-seeded cache directory was left in place");

    const good = await DirContext.open(f.ctxDir, []);
    const p = await prepareMounts([spec], stepContext(f.cacheRoot, good, noFrom), "/", await scratchDir(f.base));
    await p.release();
    assert.equal(p.mounts[0]?.kind === "bind" ? p.mounts[0].source : undefined, dir);
    assert.deepEqual((await readdir(dir)).sort(), ["a.txt", "boom.txt", "c.txt"]);
    assert.equal((await stat(dir)).mode & 0o7777, 0o750);
    const names = await readdir(f.cacheRoot);
    assert.deepEqual(
      names.filter((n) => n.startsWith(path.basename(dir)) && n !== path.basename(dir) && !n.endsWith("lock")),
      [],
      "temporary seed directories are left behind",
    );
  } finally {
    await f.cleanup();
  }
});

test("a concurrent second user of a cache never sees it half-seeded", async () => {
  const f = await fixture();
  try {
    const context = await DirContext.open(f.ctxDir, []);
    const stage = await DirContext.open(f.ctxDir, []);
    // The first fromRoot call (build A's) blocks until the test lets it go; later ones answer at once.
    let entered: () => void = () => undefined;
    const inA = new Promise<void>((r) => (entered = r));
    let letGo: () => void = () => undefined;
    const gate = new Promise<void>((r) => (letGo = r));
    let calls = 0;
    const fromRoot = async (): Promise<DirContext> => {
      if (calls++ === 0) {
        entered();
        await gate;
      }
      return stage;
    };
    const spec = cacheSpec("stage-seed", { from: "build", source: "data", uid: 0, gid: 0, mode: 0o700 });
    const dir = cacheMountDir(f.cacheRoot, "stage-seed");
    const a = prepareMounts([spec], stepContext(f.cacheRoot, context, fromRoot), "/", await scratchDir(f.base));
    await inA;
    const b = await prepareMounts([spec], stepContext(f.cacheRoot, context, fromRoot), "/", await scratchDir(f.base));
    await b.release();
    assert.deepEqual((await readdir(dir)).sort(), ["a.txt", "boom.txt", "c.txt"], "B got a half-seeded directory");
    assert.equal((await stat(dir)).mode & 0o7777, 0o700);
    letGo();
    const pa = await a;
    await pa.release();
    assert.deepEqual((await readdir(dir)).sort(), ["a.txt", "boom.txt", "c.txt"]);
  } finally {
    await f.cleanup();
  }
});

test("seed directories that a crashed build left behind are removed by the next seed", async () => {
  const f = await fixture();
  try {
    const context = await DirContext.open(f.ctxDir, []);
    const dir = cacheMountDir(f.cacheRoot, "crashed");
    const stale = `${dir}.seeding-Xy12Ab`;
    await mkdir(path.join(stale, "half"), { recursive: true });
    const noFrom = (): Promise<DirContext> => Promise.reject(new Error("no from="));
    const p = await prepareMounts(
      [cacheSpec("crashed", { source: "data" })],
      stepContext(f.cacheRoot, context, noFrom),
      "/",
      await scratchDir(f.base),
    );
    await p.release();
    assert.equal(await pathExists(stale), false, "a crashed seed's leftover was not removed");
    assert.deepEqual((await readdir(dir)).sort(), ["a.txt", "boom.txt", "c.txt"]);
  } finally {
    await f.cleanup();
  }
});

test("one RUN mounting the same locked cache twice does not wait for itself", async () => {
  const f = await fixture();
  try {
    const context = await DirContext.open(f.ctxDir, []);
    const noFrom = (): Promise<DirContext> => Promise.reject(new Error("no from="));
    const specs = [
      cacheSpec("twice", { sharing: "locked", target: "/one" }),
      cacheSpec("twice", { sharing: "locked", target: "/two" }),
    ];
    const p = await prepareOrTimeout(
      specs,
      (signal) => stepContext(f.cacheRoot, context, noFrom, signal),
      await scratchDir(f.base),
    );
    const dir = cacheMountDir(f.cacheRoot, "twice");
    assert.deepEqual(
      p.mounts.map((m) => (m.kind === "bind" ? [m.source, m.target] : [])),
      [
        [dir, "/one"],
        [dir, "/two"],
      ],
    );
    assert.equal(await lockIsFree(`${dir}.lock`), false, "the lock is not held while the RUN runs");
    await p.release();
    assert.equal(await lockIsFree(`${dir}.lock`), true, "release() did not free the lock");
  } finally {
    await f.cleanup();
  }
});

test("locked caches are taken in one global order, whatever the --mount order", async () => {
  const f = await fixture();
  try {
    const context = await DirContext.open(f.ctxDir, []);
    const noFrom = (): Promise<DirContext> => Promise.reject(new Error("no from="));
    await mkdir(f.cacheRoot, { recursive: true });
    // `first` sorts before `second` whatever their ids hash to.
    const [first, second] = ["left", "right"].sort((x, y) =>
      cacheMountDir(f.cacheRoot, x) < cacheMountDir(f.cacheRoot, y) ? -1 : 1,
    ) as [string, string];
    const firstLock = `${cacheMountDir(f.cacheRoot, first)}.lock`;
    const secondLock = `${cacheMountDir(f.cacheRoot, second)}.lock`;
    const make = (signal: AbortSignal): StepContext => stepContext(f.cacheRoot, context, noFrom, signal);
    const forward = [cacheSpec(first, { sharing: "locked" }), cacheSpec(second, { sharing: "locked" })];
    const backward = [cacheSpec(second, { sharing: "locked" }), cacheSpec(first, { sharing: "locked" })];

    // While another build holds `first`, a RUN mounting second,first must not sit on `second`.
    const holder = (await lockFile(firstLock, true)) as Unlock;
    const waiting = prepareOrTimeout(backward, make, await scratchDir(f.base));
    await new Promise((r) => setTimeout(r, 500));
    const secondFree = await lockIsFree(secondLock);
    await holder();
    await (await waiting).release();
    assert.equal(secondFree, true, "a RUN held a later lock while waiting for an earlier one");

    // Two RUNs in opposite orders, many times over, always finish.
    for (let i = 0; i < 5; i++) {
      const [x, y] = await Promise.all([
        prepareOrTimeout(forward, make, await scratchDir(f.base)).then(async (p) => (await p.release(), p)),
        prepareOrTimeout(backward, make, await scratchDir(f.base)).then(async (p) => (await p.release(), p)),
      ]);
      assert.equal(x.mounts.length, 2);
      assert.equal(y.mounts.length, 2);
    }
  } finally {
    await f.cleanup();
  }
});

test("private caches still fall back to a fresh directory when busy", async () => {
  const f = await fixture();
  try {
    const context = await DirContext.open(f.ctxDir, []);
    const noFrom = (): Promise<DirContext> => Promise.reject(new Error("no from="));
    const dir = cacheMountDir(f.cacheRoot, "priv");
    const make = (signal: AbortSignal): StepContext => stepContext(f.cacheRoot, context, noFrom, signal);
    const spec = cacheSpec("priv", { sharing: "private", source: "data", mode: 0o711 });
    const scratchA = await scratchDir(f.base);
    const a = await prepareOrTimeout([spec], make, scratchA);
    const scratchB = await scratchDir(f.base);
    const b = await prepareOrTimeout([spec], make, scratchB);
    const source = (p: PreparedMounts): string | undefined => (p.mounts[0]?.kind === "bind" ? p.mounts[0].source : "");
    assert.equal(source(a), dir);
    assert.equal(source(b), path.join(scratchB, "m0"));
    assert.deepEqual((await readdir(path.join(scratchB, "m0"))).sort(), ["a.txt", "boom.txt", "c.txt"]);
    assert.equal((await stat(path.join(scratchB, "m0"))).mode & 0o7777, 0o711);
    await a.release();
    await b.release();
  } finally {
    await f.cleanup();
  }
});

test("concurrent first users of an unseeded cache all get the same directory, never replaced", async () => {
  const f = await fixture();
  try {
    const context = await DirContext.open(f.ctxDir, []);
    const noFrom = (): Promise<DirContext> => Promise.reject(new Error("no from="));
    const dir = cacheMountDir(f.cacheRoot, "race");
    const scratches = await Promise.all(Array.from({ length: 8 }, () => scratchDir(f.base)));
    // Each user records the inode it would mount as soon as its mounts are ready: a later rename
    // over a still-empty directory would give the ones before a directory nobody else sees.
    const inodes = await Promise.all(
      scratches.map(async (s) => {
        const p = await prepareMounts(
          [cacheSpec("race", { uid: 0, mode: 0o770 })],
          stepContext(f.cacheRoot, context, noFrom),
          "/",
          s,
        );
        const ino = (await stat(dir)).ino;
        await p.release();
        return ino;
      }),
    );
    const final = await stat(dir);
    assert.deepEqual(new Set(inodes), new Set([final.ino]));
    assert.equal(final.mode & 0o7777, 0o770);
  } finally {
    await f.cleanup();
  }
});
