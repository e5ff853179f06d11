import * as assert from "node:assert/strict";
import { Readable } from "node:stream";
import { test } from "node:test";
import { hasCode } from "../common/errors.js";
import { sha256Digest } from "./digest.js";
import { emptyImage } from "./empty-image.js";
import { assembleImage } from "./assemble.js";
import { convertImageFormat, layerMediaTypeIn } from "./format.js";
import { MediaTypes } from "./media-types.js";
import type { Layer } from "./types.js";

const layer = (mediaType: string, tag: string): Layer => ({
  mediaType,
  digest: sha256Digest(Buffer.from(`blob ${tag}`)),
  diffId: sha256Digest(Buffer.from(`tar ${tag}`)),
  size: 10,
  origins: [{ registry: "r.example", repository: "base" }],
  openCompressed: async () => Readable.from([Buffer.from(`blob ${tag}`)]),
  openUncompressed: async () => Readable.from([Buffer.from(`tar ${tag}`)]),
});

const base = emptyImage({ os: "linux", architecture: "amd64" }, "oci");
const ociImage = assembleImage({
  family: "oci",
  config: base.config,
  layers: [layer(MediaTypes.ociLayerGzip, "a"), layer(MediaTypes.ociLayerNondistGzip, "b")],
});

test("docker ⇄ oci relabels manifest, config and layers; blobs, diffIDs and origins stay", async () => {
  const docker = convertImageFormat(ociImage, "docker");
  assert.equal(docker.manifest.mediaType, MediaTypes.dockerManifest);
  assert.equal(docker.manifest.config.mediaType, MediaTypes.dockerConfig);
  assert.deepEqual(
    docker.layers.map((l) => l.mediaType),
    [MediaTypes.dockerLayerGzip, MediaTypes.dockerLayerForeignGzip],
  );
  assert.deepEqual(
    docker.manifest.layers.map((l) => l.digest),
    ociImage.layers.map((l) => l.digest),
  );
  assert.deepEqual(docker.config.rootfs.diff_ids, ociImage.config.rootfs.diff_ids);
  assert.deepEqual(docker.layers[0]?.origins, ociImage.layers[0]?.origins);
  const chunks: Buffer[] = [];
  for await (const c of await (docker.layers[0] as Layer).openCompressed()) chunks.push(c as Buffer);
  assert.equal(Buffer.concat(chunks).toString(), "blob a");
  const back = convertImageFormat(docker, "oci");
  assert.equal(back.manifest.mediaType, MediaTypes.ociManifest);
  assert.deepEqual(
    back.layers.map((l) => l.mediaType),
    [MediaTypes.ociLayerGzip, MediaTypes.ociLayerNondistGzip],
  );
});

test("an image already in the family is returned as is (digest preserved)", () => {
  assert.equal(convertImageFormat(ociImage, "oci"), ociImage);
});

test("zstd and uncompressed layers cannot go into a Docker manifest", () => {
  for (const mt of [MediaTypes.ociLayerZstd, MediaTypes.ociLayer]) {
    assert.throws(
      () => layerMediaTypeIn("docker", layer(mt, "z")),
      (e: unknown) => hasCode(e, "IMAGE_FORMAT_LAYER") && /--image-format=oci/.test(String(e)),
    );
  }
  assert.equal(layerMediaTypeIn("oci", layer(MediaTypes.ociLayerZstd, "z")), MediaTypes.ociLayerZstd);
});
