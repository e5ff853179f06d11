import * as assert from "node:assert/strict";
import { test } from "node:test";
import { keepsStateFiles, stateCacheDir } from "./options.js";

const store = { dir: "/store", maxBytes: 1 };

test("--cleanup leaves the state dir as found: no state files there, the state caches only in a layer store", () => {
  assert.equal(keepsStateFiles({}), true);
  assert.equal(keepsStateFiles({ cleanup: false }), true);
  assert.equal(keepsStateFiles({ cleanup: true }), false);
  assert.equal(stateCacheDir({ stateDir: "/kaniko" }), "/kaniko");
  assert.equal(stateCacheDir({ stateDir: "/kaniko", cleanup: true }), undefined);
  assert.equal(stateCacheDir({ stateDir: "/kaniko", layerStore: store }), "/store");
  assert.equal(
    stateCacheDir({ stateDir: "/kaniko", layerStore: store, cleanup: true }),
    "/store",
    "the user's own dir",
  );
});
