import * as assert from "node:assert/strict";
import { test } from "node:test";
import { keepsStateFiles, probeCacheDir } from "./options.js";

const store = { dir: "/store", maxBytes: 1 };

test("--cleanup leaves the state dir as found: no state files there, the probe cache only in a layer store", () => {
  assert.equal(keepsStateFiles({}), true);
  assert.equal(keepsStateFiles({ cleanup: false }), true);
  assert.equal(keepsStateFiles({ cleanup: true }), false);
  assert.equal(probeCacheDir({ stateDir: "/kaniko" }), "/kaniko");
  assert.equal(probeCacheDir({ stateDir: "/kaniko", cleanup: true }), undefined);
  assert.equal(probeCacheDir({ stateDir: "/kaniko", layerStore: store }), "/store");
  assert.equal(
    probeCacheDir({ stateDir: "/kaniko", layerStore: store, cleanup: true }),
    "/store",
    "the user's own dir",
  );
});
