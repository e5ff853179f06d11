import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { access, mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { runKiln, type RunKilnResult } from "../support/kiln-cli.js";
import { startBusyboxRegistry } from "../support/busybox-registry.js";
import type { TestRegistry } from "../support/registry.js";
import { removeDir, repoRoot, tempDir } from "../support/tmp.js";
import { sh, skopeoInspect, unpackWithUmoci, writeTree } from "../integration/helpers.js";

const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip";
/** diffID of an empty tar (1024 zero bytes), the layer of an instruction that changed nothing. */
const EMPTY_TAR_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

interface Manifest {
  mediaType: string;
  config: { mediaType: string; digest: string };
  layers: { mediaType: string; digest: string }[];
}
interface ConfigFile {
  rootfs: { diff_ids: string[] };
  history: { created_by?: string; empty_layer?: boolean }[];
}

describe("build flags: --image-format, --force-build-metadata, --strict, --dryrun", () => {
  let reg: TestRegistry;
  let base: string;
  let work: string;
  before(async () => {
    ({ reg, base } = await startBusyboxRegistry());
    work = await tempDir("flags-output");
  });
  after(async () => {
    await reg?.stop();
    if (work) await removeDir(work);
  });

  let n = 0;
  /** Writes a context with `dockerfile` (+ files) and runs `kiln build` on it with `args`. */
  async function kiln(
    dockerfile: string[],
    args: string[],
    files: Record<string, string> = {},
  ): Promise<RunKilnResult> {
    const ctx = path.join(work, `ctx${n++}`);
    await writeTree(ctx, { Dockerfile: [...dockerfile, ""].join("\n"), ...files });
    return runKiln(["build", "--context", ctx, "--insecure", "--insecure-pull", ...args]);
  }
  const out = (r: RunKilnResult): string => r.stdout + r.stderr;
  const rawManifest = async (ref: string): Promise<Manifest> =>
    (await skopeoInspect(ref, "--raw")) as unknown as Manifest;
  const exists = (p: string): Promise<boolean> =>
    access(p).then(
      () => true,
      () => false,
    );

  test("--image-format=docker: Docker v2 schema 2 manifest, config and layers in the registry, layout and tarball", async () => {
    const ref = `${reg.host}/fmt:docker`;
    const layout = path.join(work, "docker-layout");
    const tar = path.join(work, "docker.tar");
    const r = await kiln(
      [`FROM ${base}`, "COPY f /f", "RUN echo ran > /ran"],
      ["--destination", ref, "--image-format=docker", "--oci-layout-path", layout, "--tar-path", tar],
      { f: "hello\n" },
    );
    assert.equal(r.code, 0, out(r));
    const m = await rawManifest(ref);
    assert.equal(m.mediaType, DOCKER_MANIFEST);
    assert.equal(m.config.mediaType, DOCKER_CONFIG);
    assert.ok(m.layers.length >= 3);
    for (const l of m.layers) assert.equal(l.mediaType, DOCKER_LAYER);
    // The base's blobs are relabelled, not recompressed: same digests as in the OCI base.
    const b = await rawManifest(`${reg.host}/busybox:latest`);
    assert.ok(b.layers.every((l) => l.mediaType === OCI_LAYER)); // the base is OCI (built by umoci)
    assert.deepEqual(
      m.layers.slice(0, b.layers.length).map((l) => l.digest),
      b.layers.map((l) => l.digest),
    );
    // The OCI layout holds the same Docker-format manifest; skopeo reads it and the tarball.
    const index = JSON.parse(await readFile(path.join(layout, "index.json"), "utf8")) as {
      manifests: { mediaType: string; digest: string }[];
    };
    assert.equal(index.manifests[0]?.mediaType, DOCKER_MANIFEST);
    const fromLayout = JSON.parse(await sh("skopeo", ["inspect", "--raw", `oci:${layout}`])) as Manifest;
    assert.equal(fromLayout.mediaType, DOCKER_MANIFEST);
    const fromTar = JSON.parse(await sh("skopeo", ["inspect", `docker-archive:${tar}`])) as { Layers: string[] };
    assert.equal(fromTar.Layers.length, m.layers.length);
    // The image is complete and consistent for an independent unpacker.
    const rootfs = await unpackWithUmoci(ref, path.join(work, "u-docker"));
    assert.equal(await readFile(path.join(rootfs, "f"), "utf8"), "hello\n");
    assert.equal(await readFile(path.join(rootfs, "ran"), "utf8"), "ran\n");
  });

  test("kaniko's outputs: one image in a reused OCI layout, BUILDER_OUTPUT, tarball through a symlink and into a FIFO, RepoTags as typed", async () => {
    const layout = path.join(work, "reused-layout");
    const builderOutput = path.join(work, "builder-output");
    await mkdir(builderOutput, { recursive: true }); // kaniko writes into an existing directory
    const real = path.join(work, "tar-real", "img.tar");
    const link = path.join(work, "img-link.tar");
    await mkdir(path.dirname(real), { recursive: true });
    await sh("ln", ["-s", real, link]);
    const ref = `${reg.host}/outputs:v1`;
    const untagged = `${reg.host}/outputs`;
    const digests: string[] = [];
    for (const content of ["one\n", "two\n"]) {
      const digestFile = path.join(work, `outputs-digest-${digests.length}`);
      const ctx = path.join(work, `outputs-ctx-${digests.length}`);
      await writeTree(ctx, { Dockerfile: `FROM ${base}\nCOPY f /f\n`, f: content });
      const r = await runKiln(
        [
          "build",
          "--context",
          ctx,
          "--insecure",
          "--insecure-pull",
          "-d",
          ref,
          "-d",
          untagged,
          "--oci-layout-path",
          layout,
          "--tar-path",
          link,
          "--digest-file",
          digestFile,
          "--report",
          path.join(work, "reports", "deep", `r${digests.length}.json`),
        ],
        { env: { BUILDER_OUTPUT: builderOutput } },
      );
      assert.equal(r.code, 0, out(r));
      digests.push(await readFile(digestFile, "utf8"));
      assert.ok(
        await exists(path.join(work, "reports", "deep", `r${digests.length - 1}.json`)),
        "--report dir created",
      );
    }
    // index.json names only the last build's image (kaniko resets it; Tekton reads the only entry).
    const index = JSON.parse(await readFile(path.join(layout, "index.json"), "utf8")) as {
      manifests: { digest: string }[];
    };
    assert.deepEqual(
      index.manifests.map((m) => m.digest),
      [digests[1]],
    );
    // BUILDER_OUTPUT/images: one JSON line per destination as typed.
    assert.equal(
      await readFile(path.join(builderOutput, "images"), "utf8"),
      `${JSON.stringify({ name: ref, digest: digests[1] })}\n${JSON.stringify({ name: untagged, digest: digests[1] })}\n`,
    );
    // The tarball went through the symlink (kept) into its target, with the destinations as typed.
    assert.equal((await sh("readlink", [link])).trim(), real);
    const manifest = JSON.parse(await sh("tar", ["-xOf", real, "manifest.json"])) as { RepoTags: string[] }[];
    assert.deepEqual(manifest[0]?.RepoTags, [ref, `${untagged}:latest`]);
    // Into a FIFO: written in place for the reader at the other end.
    const fifo = path.join(work, "img.fifo");
    await sh("mkfifo", [fifo]);
    const ctx = path.join(work, "outputs-ctx-fifo");
    await writeTree(ctx, { Dockerfile: `FROM ${base}\nCOPY f /f\n`, f: "fifo\n" });
    const [r, listing] = await Promise.all([
      runKiln(["build", "--context", ctx, "--insecure-pull", "--no-push", "--tar-path", fifo]),
      sh("sh", ["-c", `cat '${fifo}' | tar -t`]), // tar reads a pipe in full records from stdin
    ]);
    assert.equal(r.code, 0, out(r));
    assert.match(listing, /manifest\.json/);
    // Into a pipe named by /dev/fd/3 (a link to `pipe:[N]`, no path), as `--tar-path=/dev/stdout | docker load`.
    const bin = path.join(repoRoot(), "bin", "kiln");
    const piped = await sh("sh", [
      "-c",
      `'${process.execPath}' '${bin}' build --context '${ctx}' --insecure-pull --no-push --tar-path /dev/fd/3 3>&1 >/dev/null 2>/dev/null | tar -t`,
    ]);
    assert.match(piped, /manifest\.json/);
  });

  test("--annotation on a Docker-format image: a warning, as the manifest cannot carry it", async () => {
    const r = await kiln([`FROM ${base}`], ["--no-push", "--image-format=docker", "--annotation", "a=b"]);
    assert.equal(r.code, 0, out(r));
    assert.match(out(r), /--annotation is not written: the image has Docker media types/);
  });

  test("--image-format=oci over a Docker-format base; without the flag the base's format is kept", async () => {
    const dockerBase = `${reg.host}/fmt:docker-base`;
    const r0 = await kiln([`FROM ${base}`, "COPY f /f"], ["--destination", dockerBase, "--image-format=docker"], {
      f: "x\n",
    });
    assert.equal(r0.code, 0, out(r0));
    const follow = `${reg.host}/fmt:follow`;
    const r1 = await kiln([`FROM ${dockerBase}`, "COPY g /g"], ["--destination", follow], { g: "y\n" });
    assert.equal(r1.code, 0, out(r1));
    assert.equal((await rawManifest(follow)).mediaType, DOCKER_MANIFEST);
    const oci = `${reg.host}/fmt:oci`;
    const r2 = await kiln([`FROM ${dockerBase}`, "COPY g /g"], ["--destination", oci, "--image-format=oci"], {
      g: "y\n",
    });
    assert.equal(r2.code, 0, out(r2));
    const m = await rawManifest(oci);
    assert.equal(m.mediaType, OCI_MANIFEST);
    assert.equal(m.config.mediaType, OCI_CONFIG);
    for (const l of m.layers) assert.equal(l.mediaType, OCI_LAYER);
    const rootfs = await unpackWithUmoci(oci, path.join(work, "u-oci"));
    assert.equal(await readFile(path.join(rootfs, "g"), "utf8"), "y\n");
  });

  test("--compression=zstd with a Docker-format result: a warning, an error under --strict", async () => {
    const df = [`FROM ${base}`, "COPY f /f"];
    const ok = await kiln(df, ["--no-push", "--image-format=docker", "--compression=zstd"], { f: "z\n" });
    assert.equal(ok.code, 0, out(ok));
    assert.match(out(ok), /--compression=zstd is ignored/);
    const strict = await kiln(df, ["--no-push", "--image-format=docker", "--compression=zstd", "--strict"], {
      f: "z\n",
    });
    assert.notEqual(strict.code, 0, out(strict));
    assert.match(out(strict), /COMPRESSION_IGNORED.*--strict/);
  });

  test("--compression-level: out of range is a usage error; a zstd level beyond gzip's is dropped with zstd (kaniko #3147)", async () => {
    const df = [`FROM ${base}`, "COPY f /f"];
    for (const [flags, re] of [
      [["--compression-level=10"], /gzip levels go from 1 to 9/],
      [["--compression=zstd", "--compression-level=23"], /zstd levels go from 1 to 22/],
    ] as const) {
      const r = await kiln(df, ["--no-push", ...flags], { f: "z\n" });
      assert.equal(r.code, 2, out(r));
      assert.match(out(r), re);
    }
    // kaniko failed this build: a zstd level on a Docker-format image, which carries gzip layers.
    const tar = path.join(work, "zstd-20.tar");
    const z = await kiln(
      df,
      ["--no-push", "--image-format=docker", "--compression=zstd", "--compression-level=20", "--tar-path", tar],
      { f: "z\n" },
    );
    assert.equal(z.code, 0, out(z));
    assert.match(out(z), /--compression=zstd and --compression-level=20 are ignored/);
    const ok = await kiln(df, ["--no-push", "--image-format=oci", "--compression=zstd", "--compression-level=22"], {
      f: "z\n",
    });
    assert.equal(ok.code, 0, out(ok));
    assert.doesNotMatch(out(ok), /is ignored|are ignored/);
  });

  test("in-place-only flags on a directory back-end: a warning, an error under --strict", async () => {
    const df = [`FROM ${base}`, "RUN true"];
    const ok = await kiln(df, ["--no-push", "--isolation=chroot", "--pre-cleanup", "--materialize"]);
    assert.equal(ok.code, 0, out(ok));
    assert.match(out(ok), /--pre-cleanup, --materialize ignored: they act on the in-place back-end's root/);
    const strict = await kiln(df, ["--no-push", "--isolation=chroot", "--preserve-context", "--strict"]);
    assert.notEqual(strict.code, 0, out(strict));
    assert.match(out(strict), /IN_PLACE_FLAG_IGNORED/);
  });

  test("--force-build-metadata: every instruction gets a layer, empty when it changed nothing", async () => {
    const df = [`FROM ${base}`, "ENV A=1", "LABEL x=y", "RUN true", "COPY f /f", 'CMD ["sh"]'];
    const plain = `${reg.host}/meta:plain`;
    const forced = `${reg.host}/meta:forced`;
    const r1 = await kiln(df, ["--destination", plain], { f: "f\n" });
    assert.equal(r1.code, 0, out(r1));
    const r2 = await kiln(df, ["--destination", forced, "--force-build-metadata"], { f: "f\n" });
    assert.equal(r2.code, 0, out(r2));
    const baseLayers = (await rawManifest(`${reg.host}/busybox:latest`)).layers.length;
    assert.equal((await rawManifest(plain)).layers.length, baseLayers + 2); // RUN + COPY
    assert.equal((await rawManifest(forced)).layers.length, baseLayers + 5);
    const cfg = (await skopeoInspect(forced, "--config")) as unknown as ConfigFile;
    const mine = cfg.history.slice(-5);
    assert.deepEqual(
      mine.map((h) => h.empty_layer === true),
      [false, false, false, false, false],
    );
    const ids = cfg.rootfs.diff_ids.slice(-5);
    assert.equal(ids[0], EMPTY_TAR_DIFF_ID); // ENV
    assert.equal(ids[1], EMPTY_TAR_DIFF_ID); // LABEL
    assert.notEqual(ids[3], EMPTY_TAR_DIFF_ID); // COPY
    assert.equal(ids[4], EMPTY_TAR_DIFF_ID); // CMD
    // --single-snapshot gives way: kaniko snapshots after every command with --force-build-metadata.
    const single = `${reg.host}/meta:single`;
    const r3 = await kiln(df, ["--destination", single, "--force-build-metadata", "--single-snapshot"], { f: "f\n" });
    assert.equal(r3.code, 0, out(r3));
    assert.equal((await rawManifest(single)).layers.length, baseLayers + 5);
  });

  test("--strict: an overridden CMD, an unused --build-arg and an ignored FROM --platform fail with file:line", async () => {
    const twoCmds = [`FROM ${base}`, 'CMD ["a"]', 'CMD ["b"]'];
    const lenient = await kiln(twoCmds, ["--no-push"]);
    assert.equal(lenient.code, 0, out(lenient));
    const strict = await kiln(twoCmds, ["--no-push", "--strict"]);
    assert.notEqual(strict.code, 0, out(strict));
    assert.match(out(strict), /Dockerfile:2: .*only the last one will be used \[MULTIPLE_INSTRUCTIONS_DISALLOWED\]/);

    const unused = await kiln([`FROM ${base}`, "COPY f /f"], ["--no-push", "--strict", "--build-arg", "NOPE=1"], {
      f: "f\n",
    });
    assert.notEqual(unused.code, 0, out(unused));
    assert.match(out(unused), /NOPE.*UNUSED_BUILD_ARG/);

    const platform = [`FROM --platform=linux/s390x ${base}`, "COPY f /f"];
    const warned = await kiln(platform, ["--no-push"], { f: "f\n" });
    assert.equal(warned.code, 0, out(warned));
    assert.match(out(warned), /Dockerfile:1: FROM --platform=linux\/s390x is ignored/);
    const refused = await kiln(platform, ["--no-push", "--strict"], { f: "f\n" });
    assert.notEqual(refused.code, 0, out(refused));
    assert.match(out(refused), /Dockerfile:1: FROM --platform=linux\/s390x is ignored.*FROM_PLATFORM_IGNORED/);
    // $TARGETPLATFORM / $BUILDPLATFORM name the platform kiln builds: no warning.
    const native = await kiln([`FROM --platform=$BUILDPLATFORM ${base}`, "COPY f /f"], ["--no-push", "--strict"], {
      f: "f\n",
    });
    assert.equal(native.code, 0, out(native));
  });

  test("--dryrun: resolves images and push access, executes, writes and pushes nothing", async () => {
    const ref = `${reg.host}/dry:v1`;
    const layout = path.join(work, "dry-layout");
    const digestFile = path.join(work, "dry-digest");
    const df = [`FROM ${base} AS build`, "RUN exit 3", "FROM build", `COPY --from=${base} /bin/sh /sh2`];
    const r = await kiln(df, [
      "--destination",
      ref,
      "--dryrun",
      "--oci-layout-path",
      layout,
      "--digest-file",
      digestFile,
    ]);
    assert.equal(r.code, 0, out(r));
    assert.match(
      out(r),
      /Dry run: stage 0 \(build\) FROM .*busybox:latest@sha256:[0-9a-f]{64}: 1 instructions, 1 would execute/,
    );
    assert.match(out(r), /Dry run: stage 1 FROM build: 1 instructions, 1 would execute/);
    assert.match(out(r), new RegExp(`Dry run: would write push ${ref.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
    assert.match(out(r), /Dry run complete/);
    assert.equal(await exists(layout), false);
    assert.equal(await exists(digestFile), false);
    await assert.rejects(skopeoInspect(ref, "--raw"), "nothing was pushed");
    // A base image that does not exist fails the dry run like the build.
    const missing = await kiln([`FROM ${reg.host}/nope:missing`, "RUN true"], ["--no-push", "--dryrun"]);
    assert.notEqual(missing.code, 0, out(missing));
    // … and the build names the FROM line, the registry and the status.
    const built = await kiln([`FROM ${reg.host}/nope:missing`, "RUN true"], ["--no-push"]);
    assert.equal(built.code, 1, out(built));
    assert.match(built.stderr, /Dockerfile:1: FROM 127\.0\.0\.1:\d+\/nope:missing: .*nope.*404/);
  });
});
