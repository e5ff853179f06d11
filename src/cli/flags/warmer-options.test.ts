import { test } from "node:test";
import * as assert from "node:assert/strict";
import { hasCode } from "../../common/errors.js";
import { parseWarmerArgs } from "./warmer-options.js";
import { WARMER_FLAGS } from "./warmer-flags.js";

const parse = (argv: string[], env: Record<string, string | undefined> = {}) => parseWarmerArgs(argv, env);

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return hasCode(e, "USAGE")
      ? `USAGE: ${(e as Error).message}`
      : hasCode(e, "NOT_IMPLEMENTED")
        ? "NOT_IMPLEMENTED"
        : String(e);
  }
  return undefined;
}

test("warmer short flags differ from the executor's", () => {
  // -c is --cache-dir, -d --dockerfile, -f --force, -i --image.
  assert.equal(
    code(() => parse(["-i", "alpine"])),
    undefined,
  );
  assert.deepEqual(parse(["-d", "Dockerfile"]).options.dockerfile, "Dockerfile");
  const r = parseWarmerArgs(["-i", "alpine", "-c", "/cache", "-f=false", "-v", "debug", "--help"], {});
  assert.equal(r.help, true);
  assert.deepEqual(r.options.images, ["alpine"]);
  assert.equal(r.options.cacheDir, "/cache");
  assert.equal(r.options.force, false);
  assert.equal(r.options.verbosity, "debug");
});

test("warmer needs an image or a Dockerfile", () => {
  assert.match(code(() => parse([])) ?? "", /at least one image to cache/);
});

test("warmer has only camelCase --customPlatform", () => {
  assert.match(
    code(() => parse(["-i", "a", "--custom-platform=linux/arm64"])) ?? "",
    /unknown flag: --custom-platform \(did you mean --customPlatform\?\)/,
  );
  const r = parseWarmerArgs(["--customPlatform=linux/arm64", "-h"], {});
  assert.equal(r.options.customPlatform, "linux/arm64");
  assert.deepEqual(r.warnings, []);
});

test("warmer reads KANIKO_REGISTRY_MAP but not KANIKO_REGISTRY_MIRROR", () => {
  const r = parseWarmerArgs(["-h"], {
    KANIKO_REGISTRY_MAP: "index.docker.io=m;quay.io=q",
    KANIKO_REGISTRY_MIRROR: "x",
  });
  assert.deepEqual(r.options.registryMaps, { "index.docker.io": ["m"], "quay.io": ["q"] });
  assert.deepEqual(r.options.registryMirrors, []);
});

test("every kaniko warmer flag name is recognised", () => {
  const flags: [string, string | undefined][] = [
    ["verbosity", "info"],
    ["v", "info"],
    ["log-format", "json"],
    ["log-timestamp", undefined],
    ["image", "a"],
    ["i", "a"],
    ["cache-dir", "/c"],
    ["c", "/c"],
    ["force", undefined],
    ["f", undefined],
    ["cache-ttl", "1h"],
    ["dockerfile", "D"],
    ["d", "D"],
    ["build-arg", "A=1"],
    ["customPlatform", "linux/amd64"],
    ["insecure-pull", undefined],
    ["skip-tls-verify-pull", undefined],
    ["insecure-registry", "r"],
    ["skip-tls-verify-registry", "r"],
    ["registry-certificate", "r=/ca"],
    ["registry-client-cert", "r=/c,/k"],
    ["registry-map", "a=b"],
    ["registry-mirror", "m"],
    ["skip-default-registry-fallback", undefined],
  ];
  for (const [flag, value] of flags) {
    const spelled = flag.length === 1 ? `-${flag}` : `--${flag}`;
    const argv = value === undefined ? [spelled] : [spelled, value];
    const got = code(() => parse([...argv, "--image=alpine"]));
    const spec = WARMER_FLAGS.find((f) => f.name === flag || f.short === flag);
    assert.equal(got, spec?.implemented === false ? "NOT_IMPLEMENTED" : undefined, `${flag}: ${got}`);
    assert.doesNotMatch(code(() => parse([...argv])) ?? "", /unknown/, flag);
  }
});
