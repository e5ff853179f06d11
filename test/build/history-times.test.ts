import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { startBusyboxRegistry } from "../support/busybox-registry.js";
import { dockerdAvailable, startDockerd, type TestDockerd } from "../support/dockerd.js";
import { runKiln } from "../support/kiln-cli.js";
import type { TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";
import { readDockerArchive } from "../differential/image-tree.js";

interface Times {
  created: string;
  history: { created: string; by: string }[];
}

/**
 * The shape of an image's times, comparable across builders: each history time replaced by its rank
 * among the distinct times in order of first appearance, and whether `created` is the last entry's time.
 */
function shape(t: Times): { ranks: number[]; createdIsLast: boolean } {
  const seen = new Map<number, number>();
  const ranks = t.history.map((h) => {
    const ms = Date.parse(h.created);
    if (!seen.has(ms)) seen.set(ms, seen.size);
    return seen.get(ms) as number;
  });
  const last = t.history[t.history.length - 1];
  return { ranks, createdIsLast: last !== undefined && Date.parse(last.created) === Date.parse(t.created) };
}

function timesOf(config: Record<string, unknown>): Times {
  const history = (config["history"] as { created?: string; created_by?: string }[] | undefined) ?? [];
  return {
    created: String(config["created"]),
    history: history.map((h) => ({ created: h.created ?? "", by: h.created_by ?? "" })),
  };
}

// kiln writes the config and history times as BuildKit does (src/build/history-times.ts); docker 20.10's
// BuildKit is the reference here, started by the test.
describe("image and history times follow BuildKit", { skip: !dockerdAvailable() && "no dockerd" }, () => {
  let reg: TestRegistry;
  let base: string;
  let dockerd: TestDockerd;
  let work: string;

  before(async () => {
    ({ reg, base } = await startBusyboxRegistry());
    dockerd = await startDockerd();
    work = await tempDir("history-times");
  });
  after(async () => {
    await dockerd?.stop();
    await reg?.stop();
    if (work) await removeDir(work);
  });

  async function context(name: string, dockerfile: string, files: Record<string, string> = {}): Promise<string> {
    const dir = path.join(work, name);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "Dockerfile"), dockerfile);
    for (const [f, c] of Object.entries(files)) await writeFile(path.join(dir, f), c);
    return dir;
  }

  async function kilnTimes(ctx: string, repo: string, cache: boolean): Promise<{ times: Times; digest: string }> {
    const r = await runKiln([
      "build",
      "--context",
      ctx,
      "--destination",
      `${reg.host}/${repo}:latest`,
      "--insecure",
      "--insecure-pull",
      "--kaniko-dir",
      path.join(work, "state"),
      ...(cache ? ["--cache=true", "--cache-copy-layers", `--cache-repo=${reg.host}/${repo}/cache`] : []),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const accept = "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json";
    const m = await fetch(`${reg.url}/v2/${repo}/manifests/latest`, { headers: { accept } });
    const manifest = (await m.json()) as { config: { digest: string } };
    const c = await fetch(`${reg.url}/v2/${repo}/blobs/${manifest.config.digest}`);
    const digest = /Built image (sha256:[0-9a-f]{64})/.exec(r.stderr)?.[1] ?? "";
    return { times: timesOf((await c.json()) as Record<string, unknown>), digest };
  }

  async function dockerTimes(ctx: string, tag: string): Promise<{ times: Times; id: string }> {
    const b = await dockerd.docker(["build", "--network", "host", "-t", tag, ctx], { env: { DOCKER_BUILDKIT: "1" } });
    assert.equal(b.code, 0, b.stderr);
    const tar = path.join(work, `${tag.replace(/[^a-z0-9]/g, "_")}.tar`);
    const s = await dockerd.docker(["save", "-o", tar, tag]);
    assert.equal(s.code, 0, s.stderr);
    const id = (await dockerd.docker(["image", "inspect", "-f", "{{.Id}}", tag])).stdout.trim();
    return { times: timesOf((await readDockerArchive(tar)).config), id };
  }

  test("metadata instructions only: the image keeps its base image's time", async () => {
    const ctx = await context("meta", `FROM ${base}\nLABEL a=b\nENV X=1\n`);
    const k = await kilnTimes(ctx, "meta", false);
    const d = await dockerTimes(ctx, "meta:1");
    const baseTime = k.times.history[0]?.created ?? "";
    assert.ok(Date.parse(baseTime) < Date.parse("2025-01-01T00:00:00Z"), `the test base is old: ${baseTime}`);
    for (const t of [k.times, d.times]) {
      assert.equal(Date.parse(t.created), Date.parse(baseTime), JSON.stringify(t));
      assert.ok(
        t.history.every((h) => Date.parse(h.created) === Date.parse(baseTime)),
        JSON.stringify(t),
      );
    }
  });

  test("a rebuild after a COPY edit: hits keep their times, layerless entries take their neighbours'", async () => {
    const dockerfile = `FROM ${base}\nENV X=1\nRUN echo a > /a\nLABEL l=1\nCOPY f /f\nRUN echo b > /b\nCMD ["sh"]\n`;
    const ctx = await context("partial", dockerfile, { f: "one\n" });
    const k1 = await kilnTimes(ctx, "partial", true);
    const d1 = await dockerTimes(ctx, "partial:1");
    await writeFile(path.join(ctx, "f"), "two\n");
    const k2 = await kilnTimes(ctx, "partial", true);
    const d2 = await dockerTimes(ctx, "partial:2");
    // The same shapes in both builders, both builds.
    assert.deepEqual(shape(k1.times), shape(d1.times), `${JSON.stringify(k1.times)}\n${JSON.stringify(d1.times)}`);
    assert.deepEqual(shape(k2.times), shape(d2.times), `${JSON.stringify(k2.times)}\n${JSON.stringify(d2.times)}`);
    // base | ENV, RUN a (hit), LABEL: the first build's RUN a time | COPY (ran) | RUN b (ran), CMD
    assert.deepEqual(shape(k2.times), { ranks: [0, 1, 1, 1, 2, 3, 3], createdIsLast: true });
    assert.equal(k2.times.history[2]?.created, k1.times.history[2]?.created, "the hit keeps its original time");
  });

  test("an unchanged rebuild reproduces the image (same digest), as BuildKit's does", async () => {
    const ctx = await context("same", `FROM ${base}\nRUN echo a > /a\nCOPY f /f\nENV Y=2\n`, { f: "x\n" });
    const k1 = await kilnTimes(ctx, "same", true);
    const k2 = await kilnTimes(ctx, "same", true);
    assert.match(k1.digest, /^sha256:/);
    assert.equal(k2.digest, k1.digest);
    assert.deepEqual(k2.times, k1.times);
    const d1 = await dockerTimes(ctx, "same:1");
    const d2 = await dockerTimes(ctx, "same:2");
    assert.equal(d2.id, d1.id, "docker's cached rebuild is the same image too");
  });
});
