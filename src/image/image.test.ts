import * as assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { PassThrough, Readable } from "node:stream";
import { test } from "node:test";
import { hasCode } from "../common/errors.js";
import {
  assembleImage,
  emptyHeader,
  emptyImage,
  layerMediaType,
  readOciLayout,
  readTar,
  sha256Digest,
  spoolLayer,
  TarWriter,
  validateImage,
  verifyingStream,
  writeDockerArchive,
  writeOciLayout,
  type Compression,
  type Image,
  type Layer,
  type ManifestFamily,
} from "./index.js";
import { run, tempDir } from "./tar/testing.js";

async function collect(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A layer tar with one file (and a capability xattr). */
async function layerTar(file: string, content: string): Promise<Buffer> {
  const out = new PassThrough();
  const done = collect(out);
  const w = new TarWriter(out);
  await w.add(emptyHeader("app/", "dir"));
  const h = emptyHeader(`app/${file}`, "file");
  h.size = Buffer.byteLength(content);
  h.mode = 0o755;
  h.xattrs.set("security.capability", Buffer.from("0100000200200000000000000000000000000000", "hex"));
  await w.add(h, Buffer.from(content));
  await w.finish();
  return done;
}

async function makeImage(dir: string, family: ManifestFamily, compression: Compression): Promise<Image> {
  const layers: Layer[] = [];
  for (const [f, c] of [
    ["one.txt", "first layer\n"],
    ["two.txt", "second layer\n".repeat(1000)],
  ] as const) {
    layers.push(
      await spoolLayer(Readable.from([await layerTar(f, c)]), {
        dir,
        compression,
        mediaType: layerMediaType(family, compression),
      }),
    );
  }
  return assembleImage({
    family,
    config: {
      architecture: "amd64",
      os: "linux",
      config: { Cmd: ["/app/one.txt"], Env: ["PATH=/usr/bin"] },
      rootfs: { type: "layers", diff_ids: [] },
      history: [{ created_by: "test" }, { created_by: "test2" }],
    },
    layers,
  });
}

test("spoolLayer computes diffId, digest and size in one pass into a content-addressed file", async () => {
  const { dir, cleanup } = tempDir("kiln-img-");
  try {
    const tar = await layerTar("a.txt", "hello");
    for (const compression of ["gzip", "zstd", "none"] as const) {
      const layer = await spoolLayer(Readable.from([tar]), { dir, compression, mediaType: "x" });
      const file = path.join(dir, `sha256-${layer.digest.slice(7)}`);
      const blob = readFileSync(file);
      assert.equal(layer.diffId, sha256Digest(tar), compression);
      assert.equal(layer.digest, sha256Digest(blob), compression);
      assert.equal(layer.size, blob.length, compression);
      assert.ok((await collect(await layer.openUncompressed())).equals(tar), compression);
      assert.ok((await collect(await layer.openCompressed())).equals(blob), compression);
    }
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.endsWith(".tmp")),
      [],
      "no temp files left",
    );
  } finally {
    cleanup();
  }
});

test("spoolLayer honours an abort signal and leaves no temp file", async () => {
  const { dir, cleanup } = tempDir("kiln-img-");
  try {
    const ac = new AbortController();
    const endless = new Readable({ read() {} });
    endless.push(Buffer.alloc(1000));
    const p = spoolLayer(endless, { dir, compression: "gzip", mediaType: "x", signal: ac.signal });
    ac.abort();
    await assert.rejects(p);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    cleanup();
  }
});

test("verifyingStream passes good data and rejects wrong digests and sizes", async () => {
  const data = Buffer.from("blob content");
  const d = sha256Digest(data);
  assert.ok((await collect(Readable.from([data]).pipe(verifyingStream(d, data.length)))).equals(data));
  const wrong = sha256Digest("other");
  await assert.rejects(
    collect(Readable.from([data]).pipe(verifyingStream(wrong))),
    (e: unknown) => hasCode(e, "DIGEST_MISMATCH") && e.message.includes(wrong),
  );
  await assert.rejects(collect(Readable.from([data]).pipe(verifyingStream(d, 5))), (e: unknown) =>
    hasCode(e, "DIGEST_MISMATCH"),
  );
  await assert.rejects(
    collect(Readable.from([data]).pipe(verifyingStream(d, 100))),
    (e: unknown) => hasCode(e, "DIGEST_MISMATCH") && /12 bytes, expected 100/.test(e.message),
  );
});

test("emptyImage is a valid FROM-scratch image in both families", async () => {
  for (const family of ["oci", "docker"] as const) {
    const img = emptyImage({ os: "linux", architecture: "arm64", variant: "v8" }, family);
    assert.equal(img.layers.length, 0);
    assert.deepEqual(img.config.history, []);
    assert.equal(img.config.variant, "v8");
    await validateImage(img, { deep: true });
  }
});

test("OCI layout: written, read back, checked by skopeo and umoci, appended without losing manifests", async () => {
  const { dir, cleanup } = tempDir("kiln-img-");
  try {
    const img = await makeImage(path.join(dir, "spool"), "oci", "gzip");
    await validateImage(img, { deep: true });
    const layout = path.join(dir, "layout");
    await writeOciLayout(layout, img, { refName: "v1" });
    const inspect = JSON.parse(run("skopeo", ["inspect", `oci:${layout}:v1`])) as {
      Digest: string;
      Layers: string[];
    };
    assert.equal(inspect.Digest, img.digest);
    assert.deepEqual(
      inspect.Layers,
      img.layers.map((l) => l.digest),
    );
    run("umoci", ["unpack", "--image", `${layout}:v1`, path.join(dir, "bundle")]);
    assert.equal(readFileSync(path.join(dir, "bundle/rootfs/app/one.txt"), "utf8"), "first layer\n");
    assert.match(run("getcap", [path.join(dir, "bundle/rootfs/app/one.txt")]), /cap_net_raw=ep/);

    const back = await readOciLayout(layout, { refName: "v1" });
    assert.equal(back.digest, img.digest);
    assert.ok(Buffer.from(back.rawConfig).equals(Buffer.from(img.rawConfig)));
    await validateImage(back, { deep: true });
    const tarOfLayer = await collect(await back.layers[1]!.openUncompressed());
    const names: string[] = [];
    for await (const e of readTar(Readable.from([tarOfLayer]))) names.push(e.header.name);
    assert.deepEqual(names, ["app/", "app/two.txt"]);

    // append a second image (docker family, zstd is not allowed there so gzip) and re-tag v1
    const img2 = await makeImage(path.join(dir, "spool2"), "oci", "zstd");
    await writeOciLayout(layout, img2, { refName: "v2" });
    await writeOciLayout(layout, img, { refName: "v1" });
    const index = JSON.parse(readFileSync(path.join(layout, "index.json"), "utf8")) as {
      manifests: { digest: string }[];
    };
    assert.deepEqual(
      index.manifests.map((m) => m.digest),
      [img2.digest, img.digest],
    );
    assert.equal((await readOciLayout(layout, { digest: img2.digest })).digest, img2.digest);
    await assert.rejects(readOciLayout(layout), (e: unknown) => hasCode(e, "OCI_LAYOUT_INVALID"));
    await assert.rejects(readOciLayout(layout, { refName: "nope" }), (e: unknown) => hasCode(e, "OCI_LAYOUT_INVALID"));

    // skopeo can convert our layout to a docker-archive
    const viaSkopeo = path.join(dir, "via-skopeo.tar");
    run("skopeo", ["copy", `oci:${layout}:v1`, `docker-archive:${viaSkopeo}:example/app:v1`]);
    assert.match(run("tar", ["-tf", viaSkopeo]), /manifest\.json/);

    // a corrupted blob is detected on read
    const blob = path.join(layout, "blobs/sha256", img.layers[0]!.digest.slice(7));
    const bytes = readFileSync(blob);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
    writeFileSync(blob, bytes);
    const bad = await readOciLayout(layout, { refName: "v1" });
    await assert.rejects(collect(await bad.layers[0]!.openCompressed()), (e: unknown) => hasCode(e, "DIGEST_MISMATCH"));
    await assert.rejects(validateImage(bad, { deep: true }), (e: unknown) => hasCode(e, "IMAGE_INVALID"));
  } finally {
    cleanup();
  }
});

test("docker-archive is readable by skopeo and has docker save's layout", async () => {
  const { dir, cleanup } = tempDir("kiln-img-");
  try {
    const img = await makeImage(path.join(dir, "spool"), "docker", "gzip");
    await validateImage(img, { deep: true });
    const file = path.join(dir, "image.tar");
    await writeDockerArchive(file, img, ["example.com/team/app:1.0", "app"]);
    const inspect = JSON.parse(run("skopeo", ["inspect", `docker-archive:${file}`])) as {
      RepoTags: string[];
      Layers: string[];
      Architecture: string;
    };
    assert.equal(inspect.Architecture, "amd64");
    assert.equal(inspect.Layers.length, 2);
    const listing = run("tar", ["-tf", file]).trim().split("\n");
    const cfgHex = img.manifest.config.digest.slice(7);
    assert.deepEqual(listing, [
      `${cfgHex}.json`,
      `${img.layers[0]!.digest.slice(7)}.tar.gz`,
      `${img.layers[1]!.digest.slice(7)}.tar.gz`,
      "manifest.json",
      "repositories",
    ]);
    const manifest = JSON.parse(run("tar", ["-xOf", file, "manifest.json"])) as {
      Config: string;
      RepoTags: string[];
    }[];
    assert.deepEqual(manifest[0]?.RepoTags, ["example.com/team/app:1.0", "app:latest"]);
    assert.equal(
      createHash("sha256")
        .update(run("tar", ["-xOf", file, `${cfgHex}.json`]))
        .digest("hex"),
      cfgHex,
    );
    // skopeo re-reads the archive's layers and config into an OCI layout
    run("skopeo", ["copy", `docker-archive:${file}`, `oci:${path.join(dir, "oci")}:x`]);
    await assert.rejects(writeDockerArchive(path.join(dir, "bad.tar"), img, ["a@sha256:00"]), (e: unknown) =>
      hasCode(e, "INVALID_TAG"),
    );
  } finally {
    cleanup();
  }
});

test("validateImage reports inconsistencies", async () => {
  const { dir, cleanup } = tempDir("kiln-img-");
  try {
    const img = await makeImage(dir, "oci", "gzip");
    const swapped: Image = { ...img, layers: [img.layers[1]!, img.layers[0]!] };
    await assert.rejects(
      validateImage(swapped),
      (e: unknown) => hasCode(e, "IMAGE_INVALID") && /layer 0/.test(e.message),
    );
    const badConfig: Image = { ...img, rawConfig: Buffer.from("{}") };
    await assert.rejects(validateImage(badConfig), (e: unknown) => hasCode(e, "IMAGE_INVALID"));
    const lying: Layer = { ...img.layers[0]!, diffId: sha256Digest("nope") };
    const wrongDiff = assembleImage({ family: "oci", config: img.config, layers: [lying, img.layers[1]!] });
    await validateImage(wrongDiff); // shallow: consistent on paper
    await assert.rejects(
      validateImage(wrongDiff, { deep: true }),
      (e: unknown) => hasCode(e, "IMAGE_INVALID") && /diffID/.test(e.message),
    );
    const dockerWithZstd = await makeImage(path.join(dir, "z"), "oci", "zstd");
    const mixed = assembleImage({ family: "docker", config: dockerWithZstd.config, layers: dockerWithZstd.layers });
    await assert.rejects(
      validateImage(mixed),
      (e: unknown) => hasCode(e, "IMAGE_INVALID") && /mediaType/.test(e.message),
    );
  } finally {
    cleanup();
  }
});
