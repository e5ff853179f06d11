import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { toBuildOptions } from "../../src/cli/build-options.js";
import { parseExecutorArgs } from "../../src/cli/flags/index.js";
import { removeDir, tempDir } from "../support/tmp.js";

test("--layer-store, KILN_LAYER_STORE and --layer-store-max-size map onto BuildOptions.layerStore", async () => {
  const dir = await tempDir("store-flags");
  try {
    const ctx = path.join(dir, "ctx");
    await mkdir(ctx);
    const base = ["--context", ctx, "--no-push"];
    const opts = (argv: string[], env: Record<string, string> = {}) =>
      toBuildOptions(parseExecutorArgs([...base, ...argv], env).options, env, dir);
    assert.equal(opts([]).layerStore, undefined, "off by default");
    assert.deepEqual(opts(["--layer-store", "store"]).layerStore, {
      dir: path.join(dir, "store"),
      maxBytes: 20 * 1024 ** 3,
    });
    assert.deepEqual(opts(["--layer-store=/s", "--layer-store-max-size=500MB"]).layerStore, {
      dir: "/s",
      maxBytes: 500_000_000,
    });
    assert.equal(opts([], { KILN_LAYER_STORE: "/from-env" }).layerStore?.dir, "/from-env");
    assert.throws(() => opts(["--layer-store=/s", "--layer-store-max-size=huge"]), /layer-store-max-size/);
  } finally {
    await removeDir(dir);
  }
});
