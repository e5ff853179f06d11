import * as assert from "node:assert/strict";
import { test } from "node:test";
import type { Digest } from "../image/digest.js";
import type { Descriptor } from "../image/types.js";
import { parsePlatform, selectPlatform } from "./platform.js";

const d = (n: number, platform?: Descriptor["platform"], annotations?: Record<string, string>): Descriptor => ({
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  digest: `sha256:${String(n).repeat(64).slice(0, 64)}` as Digest,
  size: 1,
  ...(platform ? { platform } : {}),
  ...(annotations ? { annotations } : {}),
});

const index = [
  d(1, { os: "unknown", architecture: "unknown" }, { "vnd.docker.reference.type": "attestation-manifest" }),
  d(2, { os: "linux", architecture: "amd64" }),
  d(3, { os: "linux", architecture: "arm", variant: "v6" }),
  d(4, { os: "linux", architecture: "arm", variant: "v7" }),
  d(5, { os: "linux", architecture: "arm64", variant: "v8" }),
];

test("selects by os/arch/variant with arm64→v8 normalisation, skipping attestations", () => {
  assert.equal(selectPlatform(index, { os: "linux", architecture: "amd64" }), index[1]);
  assert.equal(selectPlatform(index, { os: "linux", architecture: "arm64" }), index[4]);
  assert.equal(selectPlatform(index, { os: "linux", architecture: "arm", variant: "v6" }), index[2]);
  assert.equal(selectPlatform(index, { os: "linux", architecture: "arm" }), index[3]);
  assert.equal(selectPlatform(index, { os: "linux", architecture: "s390x" }), undefined);
  assert.equal(selectPlatform(index, { os: "unknown", architecture: "unknown" }), undefined);
  assert.equal(selectPlatform(index, { os: "linux", architecture: "arm", variant: "v5" }), undefined);
});

test("parses --custom-platform values", () => {
  assert.deepEqual(parsePlatform("linux/arm64/v8"), { os: "linux", architecture: "arm64", variant: "v8" });
  assert.deepEqual(parsePlatform("linux/amd64"), { os: "linux", architecture: "amd64" });
  assert.throws(() => parsePlatform("linux"), /invalid platform/);
  assert.throws(() => parsePlatform("linux/arm/"), /invalid platform/);
  assert.throws(() => parsePlatform("linux/arm/v7/x"), { code: "INVALID_PLATFORM" });
  assert.deepEqual(parsePlatform("Linux/ARM64"), { os: "linux", architecture: "arm64", variant: "v8" });
  assert.deepEqual(parsePlatform("linux/arm/v6"), { os: "linux", architecture: "arm", variant: "v6" });
});
