import { after, before, describe, test } from "node:test";
import { createHash } from "node:crypto";
import assert from "node:assert/strict";
import { lstat, readFile, readdir, rm, stat, utimes } from "node:fs/promises";
import path from "node:path";
import { busyboxOciLayout, pushLayoutToRegistry } from "../support/base-images.js";
import { runKiln, type RunKilnResult } from "../support/kiln-cli.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";
import { sh, unpackWithUmoci, writeTree } from "../integration/helpers.js";
import { startBusyboxRegistry } from "../support/busybox-registry.js";
import { startFileServer, unpackLayout } from "../build/copy-support.js";

const CORPUS = path.resolve(process.cwd(), "../shared/conformance/kaniko-integration/integration/dockerfiles");

/** kaniko's cache Dockerfile with its public base swapped for the local busybox. */
async function corpusDockerfile(name: string, base: string): Promise<string> {
  const text = await readFile(path.join(CORPUS, name), "utf8");
  return text.replace(/^FROM\s+\S+/m, `FROM ${base}`);
}

function hits(r: RunKilnResult): number {
  return (r.stderr.match(/Using caching version of cmd/g) ?? []).length;
}
function misses(r: RunKilnResult): number {
  return (r.stderr.match(/No cached layer found for cmd/g) ?? []).length;
}

async function layoutDigest(layout: string): Promise<string> {
  const idx = JSON.parse(await readFile(path.join(layout, "index.json"), "utf8")) as {
    manifests: { digest: string }[];
  };
  return idx.manifests[idx.manifests.length - 1]!.digest;
}

describe("layer cache", () => {
  let reg: TestRegistry;
  let base: string;
  let work: string;
  before(async () => {
    ({ reg, base } = await startBusyboxRegistry());
    work = await tempDir("cache");
  });
  after(async () => {
    await reg?.stop();
    if (work) await removeDir(work);
  });

  /** Builds `ctx` to an OCI layout with the cache flags given; returns the CLI result and the manifest digest. */
  const buildLayout = async (
    ctx: string,
    out: string,
    extra: string[],
  ): Promise<{ r: RunKilnResult; digest: string }> => {
    const layout = path.join(work, out);
    const r = await runKiln([
      "build",
      "--context",
      ctx,
      "--no-push",
      "--insecure-pull",
      "--reproducible",
      "--oci-layout-path",
      layout,
      "--cache=true",
      ...extra,
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    return { r, digest: await layoutDigest(layout) };
  };

  test("registry cache: Dockerfile_test_cache gives the same image on the second build, without running a step", async () => {
    const ctx = path.join(work, "reg-ctx");
    await writeTree(ctx, {
      Dockerfile: await corpusDockerfile("Dockerfile_test_cache", base),
      "context/foo": "foo\n",
    });
    const args = [
      "build",
      "--context",
      ctx,
      "--destination",
      `${reg.host}/app:v1`,
      "--insecure",
      "--insecure-pull",
      "--reproducible",
      "--cache=true",
      "--cache-copy-layers",
      "--verbosity=debug",
      "--digest-file",
    ];
    const first = await runKiln([...args, path.join(work, "d1")]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(misses(first), 3);
    const second = await runKiln([...args, path.join(work, "d2")]);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(hits(second), 3, second.stderr);
    assert.equal(await readFile(path.join(work, "d2"), "utf8"), await readFile(path.join(work, "d1"), "utf8"));
    // Fully cached: no base extraction, no step executed, no snapshot.
    assert.doesNotMatch(second.stderr, /phase extract/);
    assert.doesNotMatch(second.stderr, /Taking snapshot|phase run|phase extract/);
    // Every blob of the result is already in the registry: nothing was uploaded (or downloaded).
    assert.doesNotMatch(second.stderr, /"kind":"blob-pushed"/);
    // kaniko's tag scheme: <destination repo>/cache:<key>.
    const tags = JSON.parse(
      await sh("skopeo", ["list-tags", "--tls-verify=false", `docker://${reg.host}/app/cache`]),
    ) as {
      Tags: string[];
    };
    assert.equal(tags.Tags.filter((t) => /^[0-9a-f]{64}$/.test(t)).length, 3);
    const root = await unpackWithUmoci(`${reg.host}/app:v1`, path.join(work, "reg-unpack"));
    assert.equal(await readFile(path.join(root, "foo"), "utf8"), "foo\n");
  });

  for (const [name, files] of [
    ["Dockerfile_test_cache_perm", {}],
    ["Dockerfile_test_deleted_file_cached", {}],
  ] as const) {
    test(`OCI-layout cache: ${name} is byte-identical on the second build`, async () => {
      const ctx = path.join(work, `${name}-ctx`);
      await writeTree(ctx, { Dockerfile: await corpusDockerfile(name, base), ...files });
      const cacheRepo = `oci:${path.join(work, `${name}-cache`)}`;
      const a = await buildLayout(ctx, `${name}-1`, ["--cache-repo", cacheRepo]);
      const b = await buildLayout(ctx, `${name}-2`, ["--cache-repo", cacheRepo]);
      assert.equal(hits(b.r), 2, b.r.stderr);
      assert.equal(b.digest, a.digest);
      // kaniko's layout: one OCI layout directory per key, `<path>:<key>` (kiln's slot pointers and cache
      // artifacts, header copies and skeleton records, have other tags).
      const dirs = (await readdir(work)).filter((d) => d.startsWith(`${name}-cache:`));
      assert.equal(dirs.filter((d) => /:[0-9a-f]{64}$/.test(d)).length, 2);
      // Build a third time on top of the cached layers and check the filesystem with umoci.
      const layout = path.join(work, `${name}-2`);
      await sh("skopeo", ["copy", `oci:${layout}`, `oci:${path.join(work, `${name}-copy`)}:img`]);
      const bundle = path.join(work, `${name}-bundle`);
      await sh("umoci", ["unpack", "--image", `${path.join(work, `${name}-copy`)}:img`, bundle]);
      const rootfs = path.join(bundle, "rootfs");
      if (name === "Dockerfile_test_cache_perm") {
        assert.equal((await lstat(path.join(rootfs, "foo"))).mode & 0o7777 & 0o1000, 0o1000);
        assert.equal((await lstat(path.join(rootfs, "bar"))).mode & 0o6000, 0o6000);
      } else {
        await assert.rejects(lstat(path.join(rootfs, "some/dir/first.txt")));
        assert.ok((await lstat(path.join(rootfs, "some/dir"))).isDirectory());
      }
    });
  }

  test("a build arg busts only the steps that can see it, and --explain-cache names it", async () => {
    const ctx = path.join(work, "arg-ctx");
    await writeTree(ctx, {
      Dockerfile: [
        `FROM ${base}`,
        "RUN echo before > /before",
        "ARG V=1",
        "RUN echo $V > /v",
        "RUN echo after > /after",
        "",
      ].join("\n"),
    });
    const cache = ["--cache-repo", `dir:${path.join(work, "arg-cache")}`, "--explain-cache"];
    await buildLayout(ctx, "arg-1", cache);
    const same = await buildLayout(ctx, "arg-2", cache);
    assert.equal(hits(same.r), 3);
    const changed = await buildLayout(ctx, "arg-3", [...cache, "--build-arg", "V=2"]);
    assert.equal(hits(changed.r), 1, changed.r.stderr); // RUN before the ARG still hits
    assert.equal(misses(changed.r), 2);
    assert.match(changed.r.stderr, /Dockerfile:4 \(RUN echo \$V > \/v\): build arg V changed\s*$/m);
  });

  test("a build arg expanded in a COPY flag is part of its key (fork FF_KANIKO_RESOLVE_CACHE_KEY)", async () => {
    const ctx = path.join(work, "copy-arg-ctx");
    await writeTree(ctx, { Dockerfile: [`FROM ${base}`, "ARG O=1", "COPY --chown=$O f /f", ""].join("\n"), f: "f\n" });
    const cache = ["--cache-repo", `dir:${path.join(work, "copy-arg-cache")}`, "--cache-copy-layers"];
    await buildLayout(ctx, "copy-arg-1", cache);
    assert.equal(hits((await buildLayout(ctx, "copy-arg-2", cache)).r), 1);
    const changed = await buildLayout(ctx, "copy-arg-3", [...cache, "--build-arg", "O=2"]);
    assert.equal(hits(changed.r), 0, changed.r.stderr);
    const rootfs = await unpackLayout(path.join(work, "copy-arg-3"), path.join(work, "copy-arg-u"));
    const st = await lstat(path.join(rootfs, "f"));
    assert.equal(`${st.uid}:${st.gid}`, "2:2");
    assert.equal(hits((await buildLayout(ctx, "copy-arg-4", [...cache, "--build-arg", "O=2"])).r), 1);
  });

  test("a context directory named .git is an ordinary COPY/ADD source: cached, and keyed by its content", async () => {
    const ctx = path.join(work, "dotgit-ctx");
    await writeTree(ctx, {
      Dockerfile: [`FROM ${base}`, "COPY .git /src/.git", "ADD vendor.git /src/vendor.git", ""].join("\n"),
      ".git/HEAD": "ref: refs/heads/main\n",
      "vendor.git/HEAD": "ref: refs/heads/v1\n",
    });
    const cache = ["--cache-repo", `dir:${path.join(work, "dotgit-cache")}`, "--cache-copy-layers"];
    await buildLayout(ctx, "dotgit-1", cache);
    assert.equal(hits((await buildLayout(ctx, "dotgit-2", cache)).r), 2);
    await writeTree(ctx, { "vendor.git/HEAD": "ref: refs/heads/v2\n" });
    const changed = await buildLayout(ctx, "dotgit-3", cache);
    assert.equal(hits(changed.r), 1, changed.r.stderr);
    const rootfs = await unpackLayout(path.join(work, "dotgit-3"), path.join(work, "dotgit-u"));
    assert.equal(await readFile(path.join(rootfs, "src/vendor.git/HEAD"), "utf8"), "ref: refs/heads/v2\n");
    assert.equal(await readFile(path.join(rootfs, "src/.git/HEAD"), "utf8"), "ref: refs/heads/main\n");
  });

  test("a base tag that moves to another image busts every step, through FROM <stage> too", async () => {
    const moving = `${reg.host}/moving-base:latest`;
    const pushBase = async (v: string): Promise<void> => {
      const bctx = path.join(work, `moving-${v}`);
      await writeTree(bctx, { Dockerfile: `FROM ${base}\nRUN echo ${v} > /v\n` });
      const r = await runKiln(["build", "--context", bctx, "--destination", moving, "--insecure", "--insecure-pull"]);
      assert.equal(r.code, 0, r.stderr);
    };
    await pushBase("one");
    const ctx = path.join(work, "moving-ctx");
    await writeTree(ctx, {
      Dockerfile: [`FROM ${moving} AS build`, "RUN cat /v > /b", "FROM build", "RUN cat /b > /c", ""].join("\n"),
    });
    const cache = ["--cache-repo", `dir:${path.join(work, "moving-cache")}`];
    await buildLayout(ctx, "moving-1", cache);
    assert.equal(hits((await buildLayout(ctx, "moving-2", cache)).r), 2);
    await pushBase("two");
    const moved = await buildLayout(ctx, "moving-3", cache);
    assert.equal(hits(moved.r), 0, moved.r.stderr);
    const rootfs = await unpackLayout(path.join(work, "moving-3"), path.join(work, "moving-u"));
    assert.equal(await readFile(path.join(rootfs, "c"), "utf8"), "two\n");
  });

  test("probing continues after a miss: a rerun that gives the same layer lets later steps hit", async () => {
    const ctx = path.join(work, "probe-ctx");
    await writeTree(ctx, {
      Dockerfile: [`FROM ${base}`, "COPY a.txt /a.txt", "RUN date +%s%N > /stamp", "WORKDIR /w", ""].join("\n"),
      "a.txt": "a\n",
    });
    // COPY is not cached without --cache-copy-layers (kaniko's default): it reruns every time.
    const cache = ["--cache-repo", `dir:${path.join(work, "probe-cache")}`];
    const a = await buildLayout(ctx, "probe-1", cache);
    const b = await buildLayout(ctx, "probe-2", cache);
    assert.equal(hits(b.r), 2, b.r.stderr);
    assert.equal(b.digest, a.digest); // the RUN's /stamp came from the cache
    // Changing the copied file changes the COPY layer: everything after it must miss.
    await writeTree(ctx, { "a.txt": "b\n" });
    const c = await buildLayout(ctx, "probe-3", cache);
    assert.equal(hits(c.r), 0, c.r.stderr);
  });

  test("ADD --checksum of a URL is cached by its digest: a rebuild hits without a request; no checksum, no entry", async () => {
    const body = "tool v1\n";
    const files = { "/tool.txt": body, "/tool.txt?t=tok-4f1e": body, "/other.txt": "other\n" };
    const server = await startFileServer(files, new Date("2024-01-02T03:04:05Z"));
    try {
      const sum = `sha256:${createHash("sha256").update(body).digest("hex")}`;
      const ctx = path.join(work, "add-url-ctx");
      await writeTree(ctx, {
        Dockerfile: [
          `FROM ${base}`,
          `ADD --checksum=${sum} ${server.url}/tool.txt /opt/tool.txt`,
          `ADD ${server.url}/other.txt /opt/other.txt`,
          "RUN cat /opt/tool.txt /opt/other.txt > /opt/both",
          "",
        ].join("\n"),
      });
      const cache = ["--cache-repo", `dir:${path.join(work, "add-url-cache")}`, "--cache-copy-layers"];
      const a = await buildLayout(ctx, "add-url-1", cache);
      assert.deepEqual(server.requests, ["GET /tool.txt", "GET /other.txt"]);
      server.requests.splice(0);
      const b = await buildLayout(ctx, "add-url-2", cache);
      // The pinned ADD hits without a request; the unpinned one downloads again and gives the same layer,
      // so the RUN after it hits too (the chain continues from identical layers).
      assert.deepEqual(server.requests, ["GET /other.txt"], b.r.stderr);
      assert.equal(hits(b.r), 2, b.r.stderr);
      assert.equal(b.digest, a.digest);
      // Another digest in the instruction is another key: a miss, and the download is verified again.
      const ctx2 = path.join(work, "add-url-ctx2");
      await writeTree(ctx2, {
        Dockerfile: `FROM ${base}\nADD --checksum=sha256:${"0".repeat(64)} ${server.url}/tool.txt /opt/tool.txt\n`,
      });
      const layout = path.join(work, "add-url-3");
      const c = await runKiln([
        "build",
        "--context",
        ctx2,
        "--no-push",
        "--insecure-pull",
        "--oci-layout-path",
        layout,
        "--cache=true",
        ...cache,
      ]);
      assert.notEqual(c.code, 0);
      assert.match(c.stderr, /digest mismatch/);

      // A URL that expands a secret build arg: the build is refused (its history would hold the value), and
      // the step was not cached on the way: no cache entry holds the value.
      server.requests.splice(0);
      const ctx3 = path.join(work, "add-url-ctx3");
      await writeTree(ctx3, {
        Dockerfile: `FROM ${base}\nARG TOKEN\nADD --checksum=${sum} ${server.url}/tool.txt?t=$TOKEN /opt/tool.txt\n`,
      });
      const secretCache = path.join(work, "add-url-secret-cache");
      const withToken = ["--cache-repo", `dir:${secretCache}`, "--cache-copy-layers", "--build-arg", "TOKEN=tok-4f1e"];
      for (const out of ["add-url-4", "add-url-5"]) {
        const r = await runKiln([
          "build",
          "--context",
          ctx3,
          "--no-push",
          "--insecure-pull",
          "--oci-layout-path",
          path.join(work, out),
          "--cache=true",
          ...withToken,
          "--secret-build-arg",
          "TOKEN",
        ]);
        assert.notEqual(r.code, 0, r.stderr);
        assert.match(r.stderr, /secret build arg TOKEN would be stored/);
        assert.doesNotMatch(r.stderr + r.stdout, /tok-4f1e/);
        assert.doesNotMatch(r.stderr, /Using caching version of cmd/);
      }
      assert.deepEqual(server.requests, ["GET /tool.txt?t=tok-4f1e", "GET /tool.txt?t=tok-4f1e"]);
      assert.equal((await sh("grep", ["-rl", "tok-4f1e", secretCache]).catch(() => "")).trim(), "");
      // Without --secret-build-arg the same step is cached.
      await buildLayout(ctx3, "add-url-6", withToken);
      server.requests.splice(0);
      assert.equal(hits((await buildLayout(ctx3, "add-url-7", withToken)).r), 1);
      assert.deepEqual(server.requests, []);
    } finally {
      await server.stop();
    }
  });

  test("part of a secret build arg, through a global ARG or a LABEL, reaches no cache entry, history or config", async () => {
    const part = "SUPERSECRETVALUE123456";
    const secret = ["--build-arg", `TOKEN=ghp_${part}`, "--secret-build-arg", "TOKEN"];
    const ctx = path.join(work, "meta-secret-ctx");
    await writeTree(ctx, {
      Dockerfile: `ARG TOKEN\nARG T2=\${TOKEN#ghp_}\nFROM ${base}\nARG T2\nRUN echo built > /b\n`,
    });
    const cacheDir = path.join(work, "meta-secret-cache");
    const a = await buildLayout(ctx, "meta-secret-1", ["--cache-repo", `dir:${cacheDir}`, ...secret]);
    assert.doesNotMatch(a.r.stderr + a.r.stdout, new RegExp(part));
    const found = await sh("grep", ["-rl", part, cacheDir, path.join(work, "meta-secret-1")]).catch(() => "");
    assert.equal(found.trim(), "", "no cache entry, manifest, config or layer holds the part");
    // A LABEL keeping part of the secret is refused like the whole value, naming the field, not the value.
    const ctx2 = path.join(work, "label-secret-ctx");
    await writeTree(ctx2, { Dockerfile: `FROM ${base}\nARG TOKEN\nLABEL x=\${TOKEN#ghp_}\n` });
    const r = await runKiln([
      "build",
      "--context",
      ctx2,
      "--no-push",
      "--insecure-pull",
      "--oci-layout-path",
      path.join(work, "label-secret-1"),
      ...secret,
    ]);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /secret build arg TOKEN \(a part of it\) would be stored in the image config \(config\.Labels\.x\)/,
    );
    assert.doesNotMatch(r.stderr + r.stdout, new RegExp(part));
  });

  test("with --cache-copy-layers a changed context file busts the COPY and names the file", async () => {
    const ctx = path.join(work, "copy-ctx");
    await writeTree(ctx, {
      Dockerfile: [`FROM ${base}`, "COPY src/ /src/", "RUN cat /src/* > /all", ""].join("\n"),
      "src/x.txt": "x\n",
      "src/y.txt": "y\n",
      ".dockerignore": "src/ignored\n",
    });
    const cache = ["--cache-repo", `dir:${path.join(work, "copy-cache")}`, "--cache-copy-layers", "--explain-cache"];
    await buildLayout(ctx, "copy-1", cache);
    await writeTree(ctx, { "src/ignored": "changes nothing\n" });
    const b = await buildLayout(ctx, "copy-2", cache);
    assert.equal(hits(b.r), 2, b.r.stderr);
    await writeTree(ctx, { "src/y.txt": "Y\n" });
    const c = await buildLayout(ctx, "copy-3", cache);
    assert.equal(hits(c.r), 0);
    assert.match(c.r.stderr, /file src\/y\.txt changed/);
  });

  test("cached layers (with their whiteouts) under a later executed step: deleted stays deleted", async () => {
    const ctx = path.join(work, "wh-ctx");
    await writeTree(ctx, {
      Dockerfile: [
        `FROM ${base}`,
        "COPY a.txt /a.txt", // not cached: runs, so the root exists when the hits below are applied
        "RUN mkdir -p /d && echo 1 > /d/f && echo 2 > /d/g",
        "RUN rm /d/f",
        "ARG V=1",
        "RUN ls /d > /listing-$V",
        "",
      ].join("\n"),
      "a.txt": "a\n",
    });
    const cache = ["--cache-repo", `dir:${path.join(work, "wh-cache")}`];
    await buildLayout(ctx, "wh-1", cache);
    const b = await buildLayout(ctx, "wh-2", [...cache, "--build-arg", "V=2"]);
    assert.equal(hits(b.r), 2, b.r.stderr);
    const layout = path.join(work, "wh-2");
    await sh("skopeo", ["copy", `oci:${layout}`, `oci:${path.join(work, "wh-copy")}:img`]);
    const bundle = path.join(work, "wh-bundle");
    await sh("umoci", ["unpack", "--image", `${path.join(work, "wh-copy")}:img`, bundle]);
    assert.equal(await readFile(path.join(bundle, "rootfs", "listing-2"), "utf8"), "g\n");
    await assert.rejects(lstat(path.join(bundle, "rootfs", "d", "f")));
  });

  test("multi-stage: a fully cached rebuild hits across COPY --from and FROM <stage>", async () => {
    const ctx = path.join(work, "ms-ctx");
    await writeTree(ctx, {
      Dockerfile: [
        `FROM ${base} AS build`,
        "RUN date +%s%N > /stamp",
        "FROM build AS more",
        "RUN cat /stamp > /again",
        `FROM ${base}`,
        "COPY --from=more /again /final",
        "RUN cat /final > /check",
        "",
      ].join("\n"),
    });
    const cache = ["--cache-repo", `dir:${path.join(work, "ms-cache")}`, "--cache-copy-layers"];
    const a = await buildLayout(ctx, "ms-1", cache);
    const b = await buildLayout(ctx, "ms-2", cache);
    assert.equal(hits(b.r), 4, b.r.stderr);
    assert.equal(b.digest, a.digest);
  });

  // The rest of kaniko's cache corpus, each through the backend its name implies (`_oci`: an OCI-layout
  // cache, else the registry). The apt-get line of the _install files needs the network: an offline
  // stand-in writes a file instead (it is the RUN's caching under test, not apt).
  for (const name of [
    "Dockerfile_test_cache_oci",
    "Dockerfile_test_cache_copy",
    "Dockerfile_test_cache_copy_oci",
    "Dockerfile_test_cache_install",
    "Dockerfile_test_cache_install_oci",
    "Dockerfile_test_cache_perm_oci",
  ]) {
    test(`kaniko corpus ${name}: every step hits on the second build, byte-identical image`, async () => {
      const text = (await corpusDockerfile(name, base)).replace(
        /^RUN apt-get update && apt-get install -y make$/m,
        "RUN mkdir -p /usr/share/doc/make && echo installed > /usr/share/doc/make/status",
      );
      const steps = text.split("\n").filter((l) => /^(RUN|COPY|ADD|WORKDIR) /.test(l)).length;
      const ctx = path.join(work, `${name}-corpus-ctx`);
      await writeTree(ctx, { Dockerfile: text, "context/foo": "foo\n", "context/bar/bat": "bat\n" });
      const cacheRepo = name.endsWith("_oci")
        ? `oci:${path.join(work, `${name}-corpus-cache`)}`
        : `${reg.host}/corpus/${name.toLowerCase()}/cache`;
      const cache = ["--cache-repo", cacheRepo, "--cache-copy-layers", "--insecure"];
      const a = await buildLayout(ctx, `${name}-corpus-1`, cache);
      assert.equal(misses(a.r), steps, a.r.stderr);
      const b = await buildLayout(ctx, `${name}-corpus-2`, cache);
      assert.equal(hits(b.r), steps, b.r.stderr);
      assert.equal(misses(b.r), 0);
      assert.doesNotMatch(b.r.stderr, /Taking snapshot/);
      assert.equal(b.digest, a.digest);
    });
  }

  test("concurrent builds sharing one cache do not corrupt it", async () => {
    const ctx = path.join(work, "conc-ctx");
    await writeTree(ctx, {
      Dockerfile: [`FROM ${base}`, "RUN echo one > /one", "RUN echo two > /two", "WORKDIR /app", ""].join("\n"),
    });
    for (const repo of [`dir:${path.join(work, "conc-dir")}`, `oci:${path.join(work, "conc-oci")}`]) {
      const builds = await Promise.all(
        [0, 1, 2, 3].map((i) => buildLayout(ctx, `conc-${repo.slice(0, 3)}-${i}`, ["--cache-repo", repo])),
      );
      const digests = new Set(builds.map((b) => b.digest));
      assert.equal(digests.size, 1);
      const again = await buildLayout(ctx, `conc-${repo.slice(0, 3)}-again`, ["--cache-repo", repo]);
      assert.equal(hits(again.r), 3, again.r.stderr);
      assert.equal(again.digest, builds[0]!.digest);
    }
  });

  test("an expired entry is a miss (--cache-ttl)", async () => {
    const ctx = path.join(work, "ttl-ctx");
    await writeTree(ctx, { Dockerfile: [`FROM ${base}`, "RUN echo x > /x", ""].join("\n") });
    const cache = ["--cache-repo", `dir:${path.join(work, "ttl-cache")}`];
    await buildLayout(ctx, "ttl-1", cache);
    const b = await buildLayout(ctx, "ttl-2", [...cache, "--cache-ttl=1ns"]);
    assert.equal(hits(b.r), 0);
    assert.match(b.r.stderr, /No cached layer found/);
  });

  test("warmer: a FROM by digest is served from --cache-dir without the registry", async () => {
    const own = await startRegistry();
    try {
      await pushLayoutToRegistry(await busyboxOciLayout(), own.host, "busybox:latest");
      const cacheDir = path.join(work, "warm");
      const w = await runKiln(["warm", "--image", `${own.host}/busybox:latest`, "-c", cacheDir, "--insecure-pull"]);
      assert.equal(w.code, 0, w.stderr);
      const names = (await readdir(cacheDir)).sort();
      assert.equal(names.length, 2);
      const digest = names[0]!;
      assert.match(digest, /^sha256:[0-9a-f]{64}$/);
      assert.equal(names[1], `${digest}.json`);
      const again = await runKiln(["warm", "-i", `${own.host}/busybox@${digest}`, "-c", cacheDir]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /already in cache/);
      // As in kaniko, an entry past --cache-ttl still counts as present; --force (-f) writes it again.
      const archive = path.join(cacheDir, digest);
      const old = new Date(Date.now() - 400 * 3_600_000);
      await utimes(archive, old, old);
      const warm = ["warm", "-i", `${own.host}/busybox:latest`, "-c", cacheDir, "--insecure-pull"];
      const expired = await runKiln(warm);
      assert.equal(expired.code, 0, expired.stderr);
      assert.match(expired.stderr, /already in cache/);
      assert.equal(Math.round((await stat(archive)).mtimeMs / 1000), Math.round(old.getTime() / 1000));
      const forced = await runKiln([...warm, "-f"]);
      assert.equal(forced.code, 0, forced.stderr);
      assert.doesNotMatch(forced.stderr, /already in cache/);
      assert.ok((await stat(archive)).mtimeMs > old.getTime() + 3_600_000, "rewritten");
      // Docker can load what the warmer wrote (kaniko writes a docker tarball).
      assert.match(await sh("tar", ["-tf", path.join(cacheDir, digest)]), /manifest\.json/);
      const ctx = path.join(work, "warm-ctx");
      await writeTree(ctx, { Dockerfile: [`FROM ${own.host}/busybox@${digest}`, "RUN echo hi > /hi", ""].join("\n") });
      await own.stop();
      const b = await buildLayout(ctx, "warm-1", [
        "--cache-dir",
        cacheDir,
        "--cache-repo",
        `dir:${path.join(work, "warm-cache")}`,
      ]);
      assert.match(b.r.stderr, /in local cache/);
    } finally {
      await own.stop().catch(() => undefined);
    }
  });

  test("warmer: a registry password from the environment never reaches its log", async () => {
    const secret = "warm-s3cret-tag";
    const r = await runKiln(["warm", "-i", `127.0.0.1:1/App:${secret}`, "-c", path.join(work, "warm-redact")], {
      env: { CI_REGISTRY_PASSWORD: secret },
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /invalid image reference "127\.0\.0\.1:1\/App:\*\*\*"/);
    assert.ok(!r.stderr.includes(secret), r.stderr);
  });

  test("a failed cache write is a warning, not a failed build", async () => {
    const ctx = path.join(work, "fail-ctx");
    await writeTree(ctx, { Dockerfile: [`FROM ${base}`, "RUN echo x > /x", ""].join("\n") });
    const blocker = path.join(work, "fail-cache-file");
    await writeTree(work, { "fail-cache-file": "not a directory\n" });
    const b = await buildLayout(ctx, "fail-1", ["--cache-repo", `dir:${path.join(blocker, "sub")}`]);
    assert.match(b.r.stderr, /writing cache entry/);
    await rm(blocker);
  });
});
