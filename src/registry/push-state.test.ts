import * as assert from "node:assert/strict";
import { test } from "node:test";
import type { Digest } from "../image/digest.js";
import { MediaTypes } from "../image/media-types.js";
import { statusError } from "./errors.js";
import { blobsOfManifest, isStaleAssumption, PushState } from "./push-state.js";

const d = (c: string): Digest => `sha256:${c.repeat(64)}` as Digest;
const enc = (o: unknown): Uint8Array => Buffer.from(JSON.stringify(o));
const desc = (mediaType: string, digest: Digest, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  mediaType,
  digest,
  size: 10,
  ...extra,
});

test("blobsOfManifest: config and stored layers of an image manifest, once each", () => {
  const oci = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: desc(MediaTypes.ociConfig, d("c")),
    layers: [
      desc(MediaTypes.ociLayerGzip, d("1")),
      desc(MediaTypes.ociLayerGzip, d("2")),
      desc(MediaTypes.ociLayerGzip, d("1")),
    ],
  };
  assert.deepEqual(blobsOfManifest(enc(oci), MediaTypes.ociManifest), [d("c"), d("1"), d("2")]);
  // Docker v2.2 without a mediaType field: the Content-Type decides.
  const docker = {
    schemaVersion: 2,
    config: desc(MediaTypes.dockerConfig, d("c")),
    layers: [
      desc(MediaTypes.dockerLayerGzip, d("1")),
      desc(MediaTypes.dockerLayerForeignGzip, d("f"), { urls: ["https://example.invalid/layer"] }),
      desc(MediaTypes.ociLayerNondistGzip, d("a")),
      desc(MediaTypes.ociLayerGzip, d("b"), { urls: ["https://example.invalid/b"] }),
    ],
  };
  assert.deepEqual(blobsOfManifest(enc(docker), MediaTypes.dockerManifest), [d("c"), d("1")]);
});

test("blobsOfManifest: an index, schema 1, garbage or an artifact type name nothing", () => {
  const index = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [desc(MediaTypes.ociManifest, d("e"))] };
  assert.deepEqual(blobsOfManifest(enc(index), MediaTypes.ociIndex), []);
  assert.deepEqual(blobsOfManifest(enc({ schemaVersion: 1, fsLayers: [] }), undefined), []);
  assert.deepEqual(blobsOfManifest(Buffer.from("<html>"), "text/html"), []);
  assert.deepEqual(blobsOfManifest(enc({ schemaVersion: 2, mediaType: "application/x-other" }), undefined), []);
  const badDigest = { schemaVersion: 2, config: { mediaType: "x", digest: "md5:00", size: 1 }, layers: [] };
  assert.deepEqual(blobsOfManifest(enc(badDigest), undefined), []);
});

test("isStaleAssumption: manifest refusals (400/404) yes; auth, rate limits, server errors and transport no", () => {
  const err = (status: number, code = "X"): Error =>
    statusError("pushing", "r", "app", status, JSON.stringify({ errors: [{ code, message: "m" }] }));
  assert.equal(isStaleAssumption(err(400, "MANIFEST_BLOB_UNKNOWN")), true);
  assert.equal(isStaleAssumption(err(404, "BLOB_UNKNOWN")), true);
  assert.equal(isStaleAssumption(err(400, "MANIFEST_INVALID")), true);
  for (const s of [401, 403, 409, 429, 500, 503])
    assert.equal(isStaleAssumption(err(s, "BLOB_UNKNOWN")), false, `${s}`);
  assert.equal(isStaleAssumption(new Error("socket hang up")), false);
});

test("PushState: assumptions per repository, unions of several reads, failed reads count as none, forget", async () => {
  const s = new PushState();
  assert.equal((await s.assumedIn("r", "app")).size, 0);
  s.assume("r", "app", Promise.resolve([d("1"), d("2")]));
  s.assume("r", "app", Promise.resolve([d("3")]));
  s.assume("r", "app", Promise.reject(new Error("read failed")));
  s.assume("r", "other", Promise.resolve([d("9")]));
  assert.deepEqual([...(await s.assumedIn("r", "app"))].sort(), [d("1"), d("2"), d("3")]);
  assert.equal((await s.assumedIn("q", "app")).size, 0);
  s.forget("r", "app", []);
  assert.equal((await s.assumedIn("r", "app")).size, 0);
  assert.deepEqual([...(await s.assumedIn("r", "other"))], [d("9")]);
});

test("PushState.once: one push per blob and repository, retried after a failure or forget", async () => {
  const s = new PushState();
  let calls = 0;
  const ok = (): Promise<void> => {
    calls++;
    return Promise.resolve();
  };
  await Promise.all([s.once("r", "app", d("1"), ok), s.once("r", "app", d("1"), ok)]);
  assert.equal(calls, 1);
  await s.once("r", "b", d("1"), ok);
  assert.equal(calls, 2);
  await assert.rejects(
    s.once("r", "app", d("2"), () => Promise.reject(new Error("boom"))),
    /boom/,
  );
  await s.once("r", "app", d("2"), ok);
  assert.equal(calls, 3);
  s.forget("r", "app", [d("1")]);
  await s.once("r", "app", d("1"), ok);
  assert.equal(calls, 4);
  await s.once("r", "app", d("2"), ok);
  assert.equal(calls, 4);
});
