import { after, test } from "node:test";
import assert from "node:assert/strict";
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { DirCacheStore, LayerCache } from "../cache/index.js";
import { DirContext } from "../context/index.js";
import { parseDockerfile } from "../dockerfile/index.js";
import { IgnoreList, WalkSnapshotter } from "../fs/index.js";
import { emptyImage } from "../image/empty-image.js";
import type { Runner, RunSpec } from "../run/index.js";
import { probeResult } from "../run/testing/probe-fixture.js";
import type { BuildEvent } from "./events.js";
import type { BuildOptions } from "./options.js";
import { buildStage } from "./stage.js";

// Builds one stage twice against the same cache store (as two builds on two pods would) and checks
// whether the second build hits. The runner is a stand-in: a RUN writes its argv to /out in the root.

const platform = { os: "linux", architecture: "amd64" };
const work = await mkdtemp(path.join(tmpdir(), "kiln-stage-keys-"));
after(() => rm(work, { recursive: true, force: true }));

/** A fresh directory under the test's scratch dir. */
let dirs = 0;
const freshDir = async (name: string): Promise<string> => {
  const d = path.join(work, `${name}-${++dirs}`);
  await mkdir(d, { recursive: true });
  return d;
};

/** The stand-in runner: records the command it ran in `/out` (so every RUN changes the root) unless told not to. */
const fakeRunner = (writes: boolean): Runner => ({
  isolation: "chroot",
  capabilities: probeResult({ chroot: true, mountns: true }),
  run: async (spec: RunSpec) => {
    if (writes) await writeFile(path.join(spec.root, "out"), JSON.stringify(spec.argv));
    return { exitCode: 0 };
  },
});

interface BuildSetup {
  dockerfile: string;
  context: string;
  cache: string;
  opts?: Partial<BuildOptions>;
  ignorePaths?: string[];
  fromKey?: (ref: string) => Promise<string | undefined>;
  runWrites?: boolean;
  /** Build as the in-place back-end does: VOLUME paths join the ignore list of later RUN snapshots. */
  inPlaceVolumes?: boolean;
}

/** One build of the Dockerfile's last stage; returns its step outcomes and history. */
async function build(s: BuildSetup): Promise<{ outcomes: string[]; history: string[]; layers: number }> {
  const df = parseDockerfile(s.dockerfile);
  const stage = df.stages[df.stages.length - 1];
  assert.ok(stage);
  const events: BuildEvent[] = [];
  const layers = new LayerCache({
    store: new DirCacheStore(s.cache),
    platform,
    ttlMs: 3_600_000,
    write: true,
    now: () => new Date(0),
    onWarning: () => undefined,
  });
  const tmp = await freshDir("tmp");
  const opts = {
    dockerfileName: "Dockerfile",
    buildArgs: {},
    ignorePaths: s.ignorePaths ?? [],
    ignoreVarRun: true,
    stateDir: tmp,
    cacheMountsDir: path.join(work, "cache-mounts"),
    ...s.opts,
  } as BuildOptions;
  const r = await buildStage(
    stage,
    { image: emptyImage(platform), family: "oci", rootDir: await freshDir("root"), scratch: true },
    {
      opts,
      tmpDir: tmp,
      df,
      dockerfileName: "Dockerfile",
      context: await DirContext.open(s.context, []),
      buildArgs: opts.buildArgs,
      metaArgs: new Map(),
      consumedArgs: new Set(),
      sink: {
        blobsDir: path.join(work, "blobs"),
        compression: "gzip",
        mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
        epoch: 0,
      },
      ignore: IgnoreList.create({ ignorePaths: s.ignorePaths ?? [] }),
      runner: async () => fakeRunner(s.runWrites ?? true),
      snapshotter: async () => new WalkSnapshotter(),
      fromRoot: async () => DirContext.open(s.context, []),
      report: (e) => events.push(e),
      now: () => new Date(0),
      cache: { layers, runLayers: true, copyLayers: true, explain: false },
      ...(s.fromKey ? { fromKey: s.fromKey } : {}),
      ...(s.inPlaceVolumes
        ? {
            ignoreWithVolumes: (v: readonly string[]) =>
              IgnoreList.create({ ignorePaths: [...(s.ignorePaths ?? []), ...v] }),
          }
        : {}),
    },
  );
  await layers.flush();
  const outcomes = events.flatMap((e) => (e.kind === "step-done" && e.cache ? [e.cache.status] : []));
  return { outcomes, history: r.history.map((h) => h.created_by ?? ""), layers: r.layers.length };
}

/** A context directory holding `files`. */
async function context(files: Record<string, string>): Promise<string> {
  const d = await freshDir("ctx");
  for (const [rel, body] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(d, rel)), { recursive: true });
    await writeFile(path.join(d, rel), body);
  }
  return d;
}

test("an expanded COPY heredoc misses when the ENV it expands changes", async () => {
  const ctx = await context({});
  const cache = await freshDir("cache");
  const df = (v: string): string => `FROM scratch\nENV FOO=${v}\nCOPY <<EOF /f.txt\nval=$FOO\nEOF\n`;
  assert.deepEqual((await build({ dockerfile: df("one"), context: ctx, cache })).outcomes.at(-1), "miss");
  assert.deepEqual((await build({ dockerfile: df("one"), context: ctx, cache })).outcomes.at(-1), "hit");
  assert.deepEqual((await build({ dockerfile: df("two"), context: ctx, cache })).outcomes.at(-1), "miss");
});

test("a COPY heredoc misses when the escape token that expands it changes", async () => {
  const ctx = await context({});
  const cache = await freshDir("cache");
  const body = "COPY <<EOF /f.txt\na\\$HOME\nEOF\n";
  await build({ dockerfile: `FROM scratch\n${body}`, context: ctx, cache });
  const other = await build({ dockerfile: `# escape=\`\nFROM scratch\n${body}`, context: ctx, cache });
  assert.equal(other.outcomes.at(-1), "miss");
});

test("--ignore-path is part of the chain: another list misses", async () => {
  const ctx = await context({});
  const cache = await freshDir("cache");
  const dockerfile = "FROM scratch\nRUN make\n";
  await build({ dockerfile, context: ctx, cache });
  assert.equal((await build({ dockerfile, context: ctx, cache })).outcomes.at(-1), "hit");
  assert.equal((await build({ dockerfile, context: ctx, cache, ignorePaths: ["/out"] })).outcomes.at(-1), "miss");
});

test("a cache mount seeded from=<image> misses when the image changes", async () => {
  const ctx = await context({ v: "1" });
  const cache = await freshDir("cache");
  const dockerfile = "FROM scratch\nRUN --mount=type=cache,id=x,from=img,source=/,target=/c make\n";
  const key = (d: string) => async () => d;
  await build({ dockerfile, context: ctx, cache, fromKey: key("sha256:a") });
  assert.equal((await build({ dockerfile, context: ctx, cache, fromKey: key("sha256:a") })).outcomes.at(-1), "hit");
  assert.equal((await build({ dockerfile, context: ctx, cache, fromKey: key("sha256:b") })).outcomes.at(-1), "miss");
});

test("a cache mount seeded from a context source= misses when the source changes", async () => {
  const cache = await freshDir("cache");
  const dockerfile = "FROM scratch\nRUN --mount=type=cache,id=y,source=seed,target=/c make\n";
  await build({ dockerfile, context: await context({ "seed/v": "1" }), cache });
  assert.equal((await build({ dockerfile, context: await context({ "seed/v": "1" }), cache })).outcomes.at(-1), "hit");
  assert.equal((await build({ dockerfile, context: await context({ "seed/v": "2" }), cache })).outcomes.at(-1), "miss");
});

test("an entry made with --force-build-metadata is not reused without it", async () => {
  const ctx = await context({});
  const cache = await freshDir("cache");
  const dockerfile = "FROM scratch\nRUN true\n";
  const forced = await build({ dockerfile, context: ctx, cache, runWrites: false, opts: { forceBuildMetadata: true } });
  assert.equal(forced.outcomes.at(-1), "miss");
  const plain = await build({ dockerfile, context: ctx, cache, runWrites: false });
  assert.equal(plain.outcomes.at(-1), "miss");
});

test("a RUN hit writes the history text of this build (an ARG hidden by an ENV keeps the key)", async () => {
  const ctx = await context({});
  const cache = await freshDir("cache");
  const df = (v: string): string => `FROM scratch\nENV A=x\nARG A=${v}\nRUN make\n`;
  await build({ dockerfile: df("1"), context: ctx, cache });
  const second = await build({ dockerfile: df("2"), context: ctx, cache });
  assert.equal(second.outcomes.at(-1), "hit");
  assert.match(second.history.at(-1) ?? "", /^RUN \|1 A=2 /);
});

test("a secret build arg expanded into a RUN --mount field keeps the RUN out of the cache", async () => {
  const ctx = await context({});
  const cache = await freshDir("cache");
  const token = "ghp_0123456789abcdefXYZ";
  const r = await build({
    dockerfile: "FROM scratch\nARG TOKEN\nRUN --mount=type=cache,id=c-${TOKEN},target=/c make\n",
    context: ctx,
    cache,
    opts: { buildArgs: { TOKEN: token }, secretBuildArgs: ["TOKEN"] },
  });
  assert.equal(r.outcomes.at(-1), "uncacheable");
});

test("files left out by COPY --exclude are not keyed", async () => {
  const cache = await freshDir("cache");
  const dockerfile = "FROM scratch\nCOPY --exclude=*.log src/ /d/\n";
  await build({ dockerfile, context: await context({ "src/a": "a", "src/x.log": "1" }), cache });
  const r = await build({ dockerfile, context: await context({ "src/a": "a", "src/x.log": "2" }), cache });
  assert.equal(r.outcomes.at(-1), "hit");
  const changed = await build({ dockerfile, context: await context({ "src/a": "b", "src/x.log": "2" }), cache });
  assert.equal(changed.outcomes.at(-1), "miss");
});

test("owners of context files and the matched directory's mode are not keyed; file modes are", async () => {
  const cache = await freshDir("cache");
  const dockerfile = "FROM scratch\nCOPY src/ /d/\n";
  await build({ dockerfile, context: await context({ "src/a": "a" }), cache });
  const other = await context({ "src/a": "a" });
  await chmod(path.join(other, "src"), 0o700);
  if (process.getuid?.() === 0) await chown(path.join(other, "src/a"), 1234, 1234);
  assert.equal((await build({ dockerfile, context: other, cache })).outcomes.at(-1), "hit");
  await chmod(path.join(other, "src/a"), 0o600);
  assert.equal((await build({ dockerfile, context: other, cache })).outcomes.at(-1), "miss");
});

test("the line as written is not keyed: keyword case and spacing keep the cache", async () => {
  const ctx = await context({ "a.txt": "a" });
  const cache = await freshDir("cache");
  await build({ dockerfile: "FROM scratch\nCOPY a.txt /a.txt\n", context: ctx, cache });
  const r = await build({ dockerfile: "FROM scratch\ncopy   a.txt   /a.txt\n", context: ctx, cache });
  assert.equal(r.outcomes.at(-1), "hit");
});

test("an ARG set from part of a secret build arg stays out of keys and history; steps naming it are not cached", async () => {
  const ctx = await context({});
  const cache = await freshDir("cache");
  const df = "FROM scratch\nARG TOKEN\nARG T2=${TOKEN#ghp_}\nRUN make\nWORKDIR /w/${T2%XYZ}\n";
  const part = "0123456789abcdef";
  const first = await build({
    dockerfile: df,
    context: ctx,
    cache,
    opts: { buildArgs: { TOKEN: `ghp_${part}XYZ` }, secretBuildArgs: ["TOKEN"] },
  });
  assert.deepEqual(first.outcomes.slice(-2), ["miss", "uncacheable"], "RUN, WORKDIR");
  assert.deepEqual(first.history.slice(0, 2), ["ARG TOKEN", "ARG T2"]);
  assert.equal(first.history[2], "RUN /bin/sh -c make # buildkit", "no |1 T2=… before the command");
  assert.ok(!first.history[2]?.includes(part), first.history[2]);
  // Another secret keeps the RUN's key: neither the arg nor the name set from it is keyed by value.
  const rotated = await build({
    dockerfile: df,
    context: ctx,
    cache,
    opts: { buildArgs: { TOKEN: `ghp_${part}XYZ`.replace("0", "9") }, secretBuildArgs: ["TOKEN"] },
  });
  assert.equal(rotated.outcomes.at(-2), "hit");
});

test("in place, a VOLUME before a RUN is keyed (its path leaves the RUN's snapshot); elsewhere it is not", async () => {
  const ctx = await context({});
  const plain = "FROM scratch\nRUN make\n";
  const withVolume = "FROM scratch\nVOLUME /data\nRUN make\n";
  const inPlace = await freshDir("cache");
  await build({ dockerfile: plain, context: ctx, cache: inPlace, inPlaceVolumes: true });
  const a = await build({ dockerfile: withVolume, context: ctx, cache: inPlace, inPlaceVolumes: true });
  assert.equal(a.outcomes.at(-1), "miss");
  const elsewhere = await freshDir("cache");
  await build({ dockerfile: plain, context: ctx, cache: elsewhere });
  assert.equal((await build({ dockerfile: withVolume, context: ctx, cache: elsewhere })).outcomes.at(-1), "hit");
});
