import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import path from "node:path";
import { SPREAD_MARKER } from "../../src/run/spread-dirs.js";
import { runKiln, type RunKilnResult } from "../support/kiln-cli.js";
import { type TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";
import { unpackWithUmoci, writeTree } from "../integration/helpers.js";
import { startBusyboxRegistry } from "../support/busybox-registry.js";

/** sha256 over every path of a directory tree: type, mode, owner, size, content, link target. */
async function treeHash(dir: string): Promise<string> {
  const h = createHash("sha256");
  const walk = async (rel: string): Promise<void> => {
    for (const n of (await readdir(path.join(dir, rel))).sort()) {
      const r = path.join(rel, n);
      const host = path.join(dir, r);
      const st = await lstat(host);
      h.update(`${r} ${st.mode} ${st.uid}:${st.gid} ${st.size} ${st.mtimeMs} ${st.rdev}\n`);
      if (st.isFile()) h.update(await readFile(host));
      else if (st.isSymbolicLink()) h.update(await readlink(host));
      else if (st.isDirectory()) await walk(r);
    }
  };
  await walk("");
  return h.digest("hex");
}

async function mountsLeft(under: string): Promise<string[]> {
  return (await readFile("/proc/self/mountinfo", "utf8")).split("\n").filter((l) => l.includes(under));
}

const storeAvailable = process.getuid?.() === 0;

// Builds against the real registry with --layer-store: warm builds mount the stored base layers
// instead of extracting them, and every image is byte-identical to a build without the store.
describe("--layer-store builds", { skip: !storeAvailable && "needs root (overlay mounts)" }, () => {
  let reg: TestRegistry;
  let base: string;
  let work: string;
  let n = 0;
  before(async () => {
    ({ reg, base } = await startBusyboxRegistry());
    work = await tempDir("layer-store-build");
  });
  after(async () => {
    await reg?.stop();
    if (work) await removeDir(work);
  });

  /** Builds `ctx` to a fresh tag; returns the result and the pushed digest. */
  const buildIt = async (ctx: string, extra: string[]): Promise<{ r: RunKilnResult; digest: string; ref: string }> => {
    const ref = `${reg.host}/store:t${n++}`;
    const digestFile = path.join(work, `digest-${n}`);
    const r = await runKiln([
      "build",
      "--context",
      ctx,
      "--destination",
      ref,
      "--insecure",
      "--insecure-pull",
      "--reproducible",
      "--digest-file",
      digestFile,
      "--kaniko-dir",
      path.join(work, "state"),
      "-v",
      "debug",
      ...extra,
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    return { r, digest: await readFile(digestFile, "utf8"), ref };
  };

  test("the second build mounts the stored base (no extract phase) and pushes the same image", async () => {
    const ctx = path.join(work, "warm");
    await writeTree(ctx, {
      Dockerfile: [
        `FROM ${base}`,
        "COPY app.txt /app/app.txt",
        "RUN echo built > /app/built && rm /bin/vi && echo more >> /etc/passwd && ln /bin/busybox /app/bb && ln /app/built /app/built2",
        "WORKDIR /app/w",
        // Names, link counts, sizes, modes and owners as the RUN sees them (not `ls -la`: its times would
        // make builds in different minutes differ).
        "RUN stat -c '%n %h %s %a %u' /app/* > /app/listing",
        "",
      ].join("\n"),
      "app.txt": "app\n",
    });
    const store = path.join(work, "store-warm");
    const cold = await buildIt(ctx, ["--layer-store", store]);
    const log = (b: { r: RunKilnResult }): string => b.r.stdout + b.r.stderr;
    assert.match(log(cold), /phase extract/);
    assert.match(log(cold), /0 of 1 layers of stage 0 found, 1 extracted/);
    const warm = await buildIt(ctx, ["--layer-store", store]);
    assert.doesNotMatch(log(warm), /phase extract/);
    assert.match(log(warm), /1 of 1 layers of stage 0 found, 0 extracted/);
    const plain = await buildIt(ctx, []);
    assert.equal(cold.digest, plain.digest);
    assert.equal(warm.digest, plain.digest);
    assert.deepEqual(await mountsLeft(path.join(work, "state")), [], "no mount left behind");
  });

  test("a layer store that cannot be opened fails the build and leaves no build directory behind", async () => {
    const ctx = path.join(work, "no-store");
    await writeTree(ctx, { Dockerfile: `FROM ${base}\nRUN true\n`, "not-a-dir": "x" });
    const state = path.join(work, "state-no-store");
    const r = await runKiln([
      "build",
      "--context",
      ctx,
      "--no-push",
      "--insecure-pull",
      "--kaniko-dir",
      state,
      "--layer-store",
      path.join(ctx, "not-a-dir"),
    ]);
    assert.notEqual(r.code, 0, r.stderr);
    assert.match(r.stderr, /not-a-dir/);
    const left = (await readdir(state)).filter((n) => n.startsWith("build-"));
    assert.deepEqual(left, [], "the build's own directory is removed");
  });

  test("a base with whiteouts and opaque directories across layers gives the same image", async () => {
    // The base's second layer removes files (whiteouts) and replaces a directory (opaque).
    const baseCtx = path.join(work, "wh-base");
    await writeTree(baseCtx, {
      Dockerfile: [
        `FROM ${base}`,
        "RUN mkdir -p /d/sub /e && echo 1 > /d/f && echo 2 > /d/sub/g && echo 3 > /e/h && echo 4 > /e/i",
        "RUN rm -rf /d && mkdir /d && echo new > /d/n && rm /e/h /bin/vi",
        "",
      ].join("\n"),
    });
    const whBase = await buildIt(baseCtx, []);
    const ctx = path.join(work, "wh");
    await writeTree(ctx, {
      Dockerfile: [
        `FROM ${whBase.ref}`,
        "RUN (find /d /e | sort; ls /bin | wc -l) > /out.txt && echo x > /e/i",
        "",
      ].join("\n"),
    });
    const store = path.join(work, "store-wh");
    const cold = await buildIt(ctx, ["--layer-store", store]);
    const warm = await buildIt(ctx, ["--layer-store", store]);
    const plain = await buildIt(ctx, []);
    assert.equal(cold.digest, plain.digest);
    assert.equal(warm.digest, plain.digest);
    const rootfs = await unpackWithUmoci(warm.ref, path.join(work, "u-wh"));
    const out = await readFile(path.join(rootfs, "out.txt"), "utf8");
    assert.match(out, /^\/d\n\/d\/n\n\/e\n\/e\/i\n\d+\n$/);
  });

  test("a RUN that rewrites and deletes base files leaves the store untouched", async () => {
    const store = path.join(work, "store-untouched");
    const ctx = path.join(work, "untouched");
    await writeTree(ctx, { Dockerfile: `FROM ${base}\nRUN true\n` });
    await buildIt(ctx, ["--layer-store", store]);
    const [hex] = await readdir(path.join(store, "layers", "sha256"));
    const tree = path.join(store, "layers", "sha256", hex as string, "tree");
    const before = await treeHash(tree);
    await writeTree(ctx, {
      Dockerfile: [
        `FROM ${base}`,
        "RUN echo root::0:0::/:/bin/sh > /etc/passwd && rm /bin/ls && chmod 700 /bin && touch /bin/busybox",
        "RUN rm -rf /usr /var /etc/group && mkdir /usr && echo fresh > /usr/x",
        "",
      ].join("\n"),
    });
    await buildIt(ctx, ["--layer-store", store]);
    assert.equal(await treeHash(tree), before);
  });

  test("multi-stage: handed-over roots, COPY --from a mounted stage, and cache hits applied onto a mounted root", async () => {
    const ctx = path.join(work, "multi");
    await writeTree(ctx, {
      Dockerfile: [
        `FROM ${base} AS a`,
        "RUN echo a > /a && mkdir -p /opt/x && echo 1 > /opt/x/one",
        "FROM a AS b",
        "RUN echo b > /b && rm -rf /opt/x && mkdir /opt/x && echo 2 > /opt/x/two",
        `FROM ${base}`,
        "COPY --from=b /a /b /out/",
        "COPY --from=b /opt /out/opt",
        "RUN cat /out/a /out/b > /out/ab && ls -R /out > /out/listing",
        "",
      ].join("\n"),
    });
    const store = path.join(work, "store-multi");
    const cache = ["--cache=true", `--cache-repo=${reg.host}/multi-cache`];
    const first = await buildIt(ctx, ["--layer-store", store, ...cache]);
    const second = await buildIt(ctx, ["--layer-store", store, ...cache]);
    const plain = await buildIt(ctx, []);
    assert.equal(first.digest, plain.digest);
    assert.equal(second.digest, plain.digest);
    const rootfs = await unpackWithUmoci(second.ref, path.join(work, "u-multi"));
    assert.equal(await readFile(path.join(rootfs, "out", "ab"), "utf8"), "a\nb\n");
    assert.match(await readFile(path.join(rootfs, "out", "listing"), "utf8"), /two/);
    assert.doesNotMatch(await readFile(path.join(rootfs, "out", "listing"), "utf8"), /one/);
    assert.deepEqual(await mountsLeft(path.join(work, "state")), []);
  });

  test("with --cache, layers a build produces are stored: the rebuild after a COPY edit extracts nothing", async () => {
    const ctx = path.join(work, "publish");
    await writeTree(ctx, {
      Dockerfile: [
        `FROM ${base}`,
        "RUN mkdir /data && for i in 1 2 3 4 5 6 7 8; do echo $i > /data/f$i; done && rm /bin/vi",
        "RUN echo deps > /deps.txt",
        "COPY changing.txt /changing.txt",
        "RUN cat /data/f8 /changing.txt > /both",
        "",
      ].join("\n"),
      "changing.txt": "one\n",
    });
    const store = path.join(work, "store-publish");
    const cache = ["--cache=true", "--cache-copy-layers", `--cache-repo=${reg.host}/publish-cache`];
    const log = (b: { r: RunKilnResult }): string => b.r.stdout + b.r.stderr;
    const first = await buildIt(ctx, ["--layer-store", store, ...cache]);
    // The base is extracted into the store; the three RUN layers and the COPY layer it produced are stored too.
    assert.equal((log(first).match(/layer store: stored the produced layer sha256:/g) ?? []).length, 4, log(first));
    // ... and the stack index of each produced layer with those below it, kept in its entry: the one of
    // [base, RUN, RUN] is what the rebuild below mounts.
    const prepared = [...log(first).matchAll(/stack index of (\d) layers up to sha256:([0-9a-f]{64}) prepared/g)];
    assert.deepEqual(prepared.map((m) => m[1]).sort(), ["2", "3", "4", "5"], log(first));
    const runTop = prepared.find((m) => m[1] === "3")?.[2] as string;
    const stacksOf = async (hex: string): Promise<string[]> => {
      const d = path.join(store, "layers", "sha256", hex, "stacks");
      const out: string[] = [];
      for (const f of await readdir(d)) out.push(`${f} ${(await lstat(path.join(d, f))).mtimeMs}`);
      return out.sort();
    };
    const runStacks = await stacksOf(runTop);
    assert.equal(runStacks.length, 1);
    assert.match(runStacks[0] as string, /^[0-9a-f]{64}\.bin /);
    await writeTree(ctx, { "changing.txt": "two\n" });
    const second = await buildIt(ctx, ["--layer-store", store, ...cache]);
    // The rebuild's root loaded that stack index: no new one was written (and the old one not rewritten).
    assert.deepEqual(await stacksOf(runTop), runStacks);
    // The two cached RUNs hit; the COPY misses and needs the root: base and both cached layers are mounted
    // from the store, nothing is downloaded or extracted.
    assert.equal((log(second).match(/Using caching version of cmd/g) ?? []).length, 2, log(second));
    assert.match(log(second), /3 of 3 layers of stage 0 found, 0 extracted/);
    assert.doesNotMatch(log(second), /phase extract/);
    const plain = await buildIt(ctx, []);
    assert.equal(second.digest, plain.digest, "the same image as a build without store and cache");
    const rootfs = await unpackWithUmoci(second.ref, path.join(work, "u-publish"));
    assert.equal(await readFile(path.join(rootfs, "both"), "utf8"), "8\ntwo\n");
    assert.deepEqual(await mountsLeft(path.join(work, "state")), []);
  });

  test("large RUN changes are stacked onto the mounted root: deletes, whiteouts, opaque dirs, COPY and FROM a stacked stage", async () => {
    const ctx = path.join(work, "stacked");
    const many = "for i in $(seq 1 150); do echo $i > /m/keep/f$i; echo $i > /m/gone/g$i; done";
    await writeTree(ctx, {
      "added.txt": "added\n",
      Dockerfile: [
        `FROM ${base} AS s`,
        `RUN mkdir -p /m/keep /m/gone /d && ${many} && echo old > /d/old && ln /m/keep/f1 /m/hard`,
        "COPY added.txt /m/keep/",
        // Deletes files of the stacked layer and of the base, replaces a stacked dir (opaque), rewrites files.
        "RUN rm -rf /m/gone /bin/vi /d/old /m/keep/f2 && mkdir /m/gone && echo n > /m/gone/n && " +
          "for i in $(seq 3 100); do echo x$i > /m/keep/f$i; done",
        "RUN rm /m/keep/f3 /m/keep/added.txt && echo small > /m/small",
        "FROM s AS t",
        "RUN for i in $(seq 1 80); do echo t$i > /m/t$i; done && rm -rf /m/gone && " +
          "(find /m /d | sort; cat /m/hard /m/keep/f4; ls /bin | wc -l) > /listing",
        "",
      ].join("\n"),
    });
    const store = path.join(work, "store-stacked");
    const cold = await buildIt(ctx, ["--layer-store", store]);
    const warm = await buildIt(ctx, ["--layer-store", store]);
    const plain = await buildIt(ctx, []);
    assert.equal(cold.digest, plain.digest);
    assert.equal(warm.digest, plain.digest);
    // Three of the four RUNs change enough to be stacked (the small one is copied).
    assert.equal((warm.r.stderr + warm.r.stdout).match(/RUN changes stacked as a lower layer/g)?.length, 3);
    const rootfs = await unpackWithUmoci(warm.ref, path.join(work, "u-stacked"));
    const listing = await readFile(path.join(rootfs, "listing"), "utf8");
    assert.doesNotMatch(listing, /gone|\/d\/old|keep\/f2\n|keep\/f3\n|added/);
    assert.match(listing, /\/m\/keep\/f4\n/);
    assert.match(listing, /\/m\/t80\n/);
    assert.match(listing, /\n1\nx4\n\d+\n$/);
    assert.deepEqual(await mountsLeft(path.join(work, "state")), []);
  });

  test("when the stacked layers no longer fit in the mount options, RUN changes are copied instead", async () => {
    // A state dir with a ~600-character path: each stacked lower adds that much to the one-page mount options.
    const state = path.join(work, ...Array.from({ length: 12 }, (_, i) => `deep-state-dir-${i}-`.padEnd(48, "x")));
    const ctx = path.join(work, "overflow");
    const run = (i: number): string =>
      `RUN mkdir /r${i} && for j in $(seq 1 40); do echo ${i}-$j > /r${i}/f$j; done && rm -f /r${i - 1}/f1`;
    await writeTree(ctx, {
      // The listing covers what the RUNs made and the base, not /proc, /sys or /dev: those show the host's
      // processes, cgroups and devices, which change between builds (a digest mismatch in session 14's run).
      Dockerfile: [
        `FROM ${base}`,
        ...[1, 2, 3, 4, 5, 6, 7].map(run),
        "RUN ls -R /r1 /r2 /r3 /r4 /r5 /r6 /r7 /bin /etc > /listing",
        "",
      ].join("\n"),
    });
    const store = path.join(work, "store-overflow");
    const cold = await buildIt(ctx, ["--layer-store", store, "--kaniko-dir", state]);
    const warm = await buildIt(ctx, ["--layer-store", store, "--kaniko-dir", state]);
    const plain = await buildIt(ctx, []);
    assert.equal(cold.digest, plain.digest);
    assert.equal(warm.digest, plain.digest);
    const log = warm.r.stderr + warm.r.stdout;
    assert.ok((log.match(/RUN changes stacked as a lower layer/g)?.length ?? 0) >= 2, log);
    assert.match(log, /too many layers to stack; copying the RUN changes/);
    assert.deepEqual(await mountsLeft(state), []);
  });

  test("concurrent builds share one store", async () => {
    const store = path.join(work, "store-shared");
    const ctx = path.join(work, "shared");
    await writeTree(ctx, { Dockerfile: `FROM ${base}\nRUN echo shared > /s\nCOPY Dockerfile /\n` });
    const all = await Promise.all([0, 1, 2].map(() => buildIt(ctx, ["--layer-store", store])));
    const plain = await buildIt(ctx, []);
    for (const b of all) assert.equal(b.digest, plain.digest);
    assert.equal((await readdir(path.join(store, "layers", "sha256"))).length, 1);
    // Only the marker that the extraction dir is spread (see spreadSubdirectories) stays in tmp/.
    assert.deepEqual(
      (await readdir(path.join(store, "tmp"))).filter((n) => n !== SPREAD_MARKER),
      [],
    );
    assert.deepEqual(await mountsLeft(path.join(work, "state")), []);
  });
});
