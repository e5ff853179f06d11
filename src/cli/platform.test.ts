import * as assert from "node:assert/strict";
import { test } from "node:test";
import { UsageError } from "./flags/index.js";
import { hostPlatform, parsePlatform } from "./platform.js";

test("--custom-platform: empty is the host, values are normalised, malformed ones are usage errors", () => {
  assert.deepEqual(parsePlatform(""), hostPlatform());
  assert.deepEqual(parsePlatform("linux/arm64"), { os: "linux", architecture: "arm64", variant: "v8" });
  assert.deepEqual(parsePlatform("LINUX/AMD64"), { os: "linux", architecture: "amd64" });
  for (const bad of ["linux", "linux/", "/amd64", "linux/arm/", "linux/arm/v7/x"]) {
    assert.throws(() => parsePlatform(bad), UsageError, bad);
    assert.throws(
      () => parsePlatform(bad),
      { message: `invalid --custom-platform "${bad}": expected os/arch[/variant]` },
      bad,
    );
  }
});
