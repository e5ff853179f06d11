import { test } from "node:test";
import assert from "node:assert/strict";
import { realpathSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Runner } from "../run/index.js";
import { probeResult } from "../run/testing/probe-fixture.js";
import { decideInPlace, ignoreWithVolumes } from "./in-place.js";
import type { BuildOptions } from "./options.js";

const runner = (isolation: Runner["isolation"], inContainer: boolean) => async (): Promise<Runner> => ({
  isolation,
  capabilities: probeResult({ inContainer }),
  run: () => Promise.reject(new Error("not used")),
});
const opts = (o: Partial<BuildOptions>): Readonly<BuildOptions> =>
  ({
    isolation: "in-place",
    stateDir: "/kaniko-test-state",
    contextDir: "/ctx",
    dockerfilePath: "/ctx/Dockerfile",
    ignorePaths: [],
    ignoreVarRun: true,
    ...o,
  }) as BuildOptions;

test("directory roots unless the runner is in-place", async () => {
  assert.equal(await decideInPlace(opts({ isolation: "chroot" }), runner("chroot", true)), undefined);
  assert.equal(await decideInPlace(opts({ isolation: "auto" }), runner("userns", true)), undefined);
});

test("in place outside a container is refused without --force (kaniko's message)", async () => {
  await assert.rejects(decideInPlace(opts({}), runner("in-place", false)), {
    code: "IN_PLACE_OUTSIDE_CONTAINER",
    message: /should only be run inside of a container, run with the --force flag/,
  });
  // auto never picks in-place outside a container
  assert.equal(await decideInPlace(opts({ isolation: "auto" }), runner("in-place", false)), undefined);
});

test("in place is refused when kiln's own runtime is not under the ignore list", async () => {
  // This process's node binary and kiln's sources are not under /kaniko-test-state: a real in-place
  // build would delete them, so it must refuse — explicitly asked for or auto-detected.
  await assert.rejects(decideInPlace(opts({ force: true }), runner("in-place", false)), {
    code: "IN_PLACE_RUNTIME_EXPOSED",
  });
  await assert.rejects(decideInPlace(opts({}), runner("in-place", true)), { code: "IN_PLACE_RUNTIME_EXPOSED" });
  assert.equal(await decideInPlace(opts({ isolation: "auto" }), runner("in-place", true)), undefined);
});

test("with the runtime protected, the ignore list keeps state dir, system mounts, context and --ignore-path", async () => {
  const runtime = [
    path.dirname(realpathSync(process.execPath)),
    path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../.."),
  ];
  const ignore = await decideInPlace(opts({ ignorePaths: runtime }), runner("in-place", true));
  assert.ok(ignore);
  for (const p of ["/kaniko-test-state/x", "/proc/1", "/dev/null", "/sys/fs", "/ctx/Dockerfile", "/var/run/x"])
    assert.ok(ignore.ignores(p), p);
  assert.ok(!ignore.ignores("/etc/passwd"));
});

test("VOLUME paths: what lies below is ignored, the volume directory itself is not", () => {
  const ignore = ignoreWithVolumes({ stateDir: "/kaniko", ignorePaths: ["/cache"] }, ["/data", "/we*rd"]);
  assert.ok(ignore.ignores("/data/file"));
  assert.ok(ignore.ignores("/data/sub/deep"));
  assert.ok(!ignore.ignores("/data"));
  assert.ok(!ignore.ignores("/database/x"));
  assert.ok(ignore.isAncestorOfIgnored("/data"), "cleaning the root keeps what is below a volume");
  assert.ok(ignore.ignores("/we*rd/x"));
  assert.ok(!ignore.ignores("/weird/x"), "volume names are literal, not globs");
  assert.ok(ignore.ignores("/kaniko/x") && ignore.ignores("/cache/y"));
});
