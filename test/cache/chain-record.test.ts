/**
 * A stage's chain record (one cache tag naming the latest entry of every step position) against the
 * real registry, with every request counted by a proxy: written by a first build, rewritten when a
 * step changes (the steps before it still hit from it), and read alone by an unchanged rebuild.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { runKiln, type RunKilnResult } from "../support/kiln-cli.js";
import { writeTree } from "../integration/helpers.js";
import type { FaultProxy } from "../support/fault-proxy.js";
import { useSuiteFixture } from "../support/suite-fixture.js";

type Req = FaultProxy["requests"][number];

function hits(r: RunKilnResult): number {
  return (r.stderr.match(/Using caching version of cmd/g) ?? []).length;
}

function count(reqs: readonly Req[], method: string, re: RegExp): number {
  return reqs.filter((q) => q.method === method && re.test(q.path)).length;
}

const CHAIN = /\/app\/cache\/manifests\/chain-[0-9a-f]{64}$/;
const SLOT = /\/app\/cache\/manifests\/slot-[0-9a-f]{64}$/;
const KEY = /\/app\/cache\/manifests\/[0-9a-f]{64}$/;

interface ChainJson {
  v: number;
  slots: { slot: string; entry: { record: { key: string; createdBy: string }; created: string } | null }[];
}

describe("cache chain record", () => {
  const f = useSuiteFixture("cache-chain", { proxy: true });

  /** The chain record as stored in the registry (read directly, not through the proxy). */
  const readChain = async (tag: string): Promise<ChainJson> => {
    const res = await fetch(`${f.reg.url}/v2/app/cache/manifests/${tag}`, {
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    assert.equal(res.status, 200);
    const m = (await res.json()) as { annotations?: Record<string, string> };
    const text = m.annotations?.["dev.kiln.cache.chain"];
    assert.ok(text, "the chain manifest carries its records");
    return JSON.parse(text) as ChainJson;
  };

  test("an edited step misses from there on and rewrites the chain; an unchanged rebuild reads only the chain", async () => {
    const ctx = path.join(f.work, "ctx");
    const dockerfile = [
      `FROM ${f.proxy.host}/busybox:latest`,
      "RUN echo one > /one",
      "ARG V=1",
      'RUN echo "$V" > /v',
      "RUN echo three > /three",
      "COPY f.txt /f.txt",
      "RUN cat /f.txt > /copy",
      "",
    ].join("\n");
    await writeTree(ctx, { Dockerfile: dockerfile, "f.txt": "first\n" });
    const build = async (...extra: string[]): Promise<{ r: RunKilnResult; reqs: Req[]; list: string }> => {
      f.proxy.requests.splice(0);
      const r = await runKiln([
        "build",
        "--context",
        ctx,
        "--no-push",
        "--insecure",
        "--insecure-pull",
        "--cache=true",
        "--cache-copy-layers",
        `--cache-repo=${f.proxy.host}/app/cache`,
        "--kaniko-dir",
        path.join(f.work, "state"),
        ...extra,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const reqs = f.proxy.requests.splice(0);
      return { r, reqs, list: reqs.map((q) => `${q.method} ${q.path}`).join("\n") };
    };

    // 1: no chain yet: it and each of the 5 positions are read; 5 entries and the chain are written.
    const one = await build();
    assert.equal(hits(one.r), 0, one.r.stderr);
    assert.equal(count(one.reqs, "GET", CHAIN), 1, one.list);
    assert.equal(count(one.reqs, "GET", SLOT), 5, one.list);
    assert.equal(count(one.reqs, "PUT", KEY), 5, one.list);
    assert.equal(count(one.reqs, "PUT", CHAIN), 1, one.list);
    const tag = one.reqs
      .find((q) => q.method === "PUT" && CHAIN.test(q.path))!
      .path.split("/")
      .pop()!;
    const chain1 = await readChain(tag);
    assert.equal(chain1.slots.length, 5);
    assert.ok(chain1.slots.every((s) => s.entry !== null));

    // 2: a build arg changed: the step before it hits from the chain, the 4 from there on miss (each
    // key read once, as the chain names other keys) and are written; the chain is rewritten.
    const two = await build("--build-arg", "V=2", "--explain-cache");
    assert.equal(hits(two.r), 1, two.r.stderr);
    // Misses are explained against the chain's entries, with no further request.
    assert.match(two.r.stderr, /Cache miss at Dockerfile:4 \(RUN echo "\$V" > \/v\): build arg V changed/);
    assert.match(
      two.r.stderr,
      /Cache miss at Dockerfile:6 \(COPY f\.txt \/f\.txt\): the result of an earlier step changed/,
    );
    assert.equal(count(two.reqs, "GET", CHAIN), 1, two.list);
    assert.equal(count(two.reqs, "GET", SLOT), 0, two.list);
    assert.equal(count(two.reqs, "GET", KEY), 4, two.list);
    assert.equal(count(two.reqs, "PUT", KEY), 4, two.list);
    assert.equal(count(two.reqs, "PUT", CHAIN), 1, two.list);
    const chain2 = await readChain(tag);
    // The carried entry keeps its creation time (--cache-ttl counts from when the step was built).
    assert.deepEqual(chain2.slots[0], chain1.slots[0]);
    for (let i = 1; i < 5; i++) assert.notEqual(chain2.slots[i]?.entry?.record.key, chain1.slots[i]?.entry?.record.key);

    // 3: unchanged: every step hits from the one chain read; nothing is written.
    const three = await build("--build-arg", "V=2");
    assert.equal(hits(three.r), 5, three.r.stderr);
    assert.equal(count(three.reqs, "GET", /\/app\/cache\/manifests\//), 1, three.list);
    assert.equal(count(three.reqs, "GET", CHAIN), 1, three.list);
    assert.equal(count(three.reqs, "PUT", /\/app\/cache\//), 0, three.list);
    assert.equal(count(three.reqs, "POST", /\/app\/cache\//), 0, three.list);

    // 4: a context file changed: the COPY and the RUN after it miss, the chain is rewritten.
    await writeTree(ctx, { "f.txt": "second\n" });
    const four = await build("--build-arg", "V=2");
    assert.equal(hits(four.r), 3, four.r.stderr);
    assert.equal(count(four.reqs, "GET", CHAIN), 1, four.list);
    assert.equal(count(four.reqs, "GET", KEY), 2, four.list);
    assert.equal(count(four.reqs, "PUT", CHAIN), 1, four.list);
    const chain4 = await readChain(tag);
    assert.deepEqual(chain4.slots.slice(0, 3), chain2.slots.slice(0, 3));

    // 5: back to the first build's inputs: the chain names the newer entries, so each step's key is
    // read itself (every entry is still there) and all hit; the chain then names these entries.
    await writeTree(ctx, { "f.txt": "first\n" });
    const five = await build();
    assert.equal(hits(five.r), 5, five.r.stderr);
    assert.equal(count(five.reqs, "GET", KEY), 4, five.list);
    assert.equal(count(five.reqs, "PUT", KEY), 0, five.list);
    assert.equal(count(five.reqs, "PUT", CHAIN), 1, five.list);
    // The chain's layers were read from the cache repository: writing the chain checks none of them.
    assert.equal(count(five.reqs, "HEAD", /\/app\/cache\/blobs\//), 0, five.list);
    assert.deepEqual(await readChain(tag), chain1);

    // 6: --no-push-cache reads the chain but writes nothing, also when a step misses.
    const six = await build("--build-arg", "V=3", "--no-push-cache");
    assert.equal(hits(six.r), 1, six.r.stderr);
    assert.equal(count(six.reqs, "GET", CHAIN), 1, six.list);
    assert.equal(count(six.reqs, "PUT", /\/app\/cache\//), 0, six.list);
    assert.equal(count(six.reqs, "POST", /\/app\/cache\//), 0, six.list);
  });
});
