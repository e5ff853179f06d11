import * as assert from "node:assert/strict";
import { test } from "node:test";
import { hasCode } from "../common/errors.js";
import { parseManifest } from "./manifest.js";

const D = `sha256:${"b".repeat(64)}`;
const enc = (o: unknown): Uint8Array => Buffer.from(JSON.stringify(o));

test("detects image manifests and indexes, with or without mediaType", () => {
  const m = { schemaVersion: 2, config: { mediaType: "x", digest: D, size: 2 }, layers: [] };
  assert.equal(parseManifest(enc(m), undefined, "r").kind, "manifest");
  assert.equal(parseManifest(enc(m), undefined, "r").mediaType, "application/vnd.oci.image.manifest.v1+json");
  const dm = { ...m, mediaType: "application/vnd.docker.distribution.manifest.v2+json" };
  assert.equal(parseManifest(enc(dm), "application/json", "r").mediaType, dm.mediaType);
  const idx = { schemaVersion: 2, manifests: [{ mediaType: "x", digest: D, size: 3 }] };
  const p = parseManifest(enc(idx), "application/vnd.docker.distribution.manifest.list.v2+json", "r");
  assert.equal(p.kind, "index");
  assert.equal(p.mediaType, "application/vnd.docker.distribution.manifest.list.v2+json");
});

test("rejects schema 1, unknown types, bad digests", () => {
  assert.throws(
    () => parseManifest(enc({ schemaVersion: 1, name: "x", fsLayers: [] }), undefined, "reg/app:old"),
    (e: unknown) =>
      hasCode(e, "UNSUPPORTED_MANIFEST") && /schema 1/.test(e.message) && e.message.includes("reg/app:old"),
  );
  assert.throws(
    () =>
      parseManifest(
        enc({ schemaVersion: 2, mediaType: "application/vnd.oci.artifact.manifest.v1+json" }),
        undefined,
        "r",
      ),
    (e: unknown) => hasCode(e, "UNSUPPORTED_MANIFEST"),
  );
  const m = { schemaVersion: 2, config: { mediaType: "x", digest: "sha512:abc", size: 2 }, layers: [] };
  assert.throws(
    () => parseManifest(enc(m), undefined, "r"),
    (e: unknown) => hasCode(e, "INVALID_MANIFEST"),
  );
  assert.throws(() => parseManifest(Buffer.from("{"), undefined, "r"), /not JSON/);
});
