import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { toBuildOptions } from "./build-options.js";
import { parseExecutorArgs } from "./flags/index.js";
import { registryClientOptions } from "./registry-options.js";

/** The build options of `kiln build <argv>` for a throwaway context. */
function optionsOf(argv: string[]) {
  const ctx = mkdtempSync(path.join(tmpdir(), "kiln-regopts-"));
  writeFileSync(path.join(ctx, "Dockerfile"), "FROM scratch\n");
  try {
    const o = parseExecutorArgs(["--context", ctx, "--destination", "push.example/app:1", ...argv], {}).options;
    return toBuildOptions(o, {}, ctx);
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}

const tls = (argv: string[], registry: string, purpose: "push" | "pull") =>
  registryClientOptions(optionsOf(argv), {}, () => undefined).hostOptions(registry, purpose);

test("--skip-tls-verify covers pulls too and --skip-tls-verify-pull does nothing, as in kaniko", () => {
  for (const purpose of ["push", "pull"] as const) {
    assert.equal(tls([], "base.example", purpose).skipTlsVerify, false);
    assert.equal(tls(["--skip-tls-verify"], "base.example", purpose).skipTlsVerify, true, purpose);
    assert.equal(tls(["--skip-tls-verify-pull"], "base.example", purpose).skipTlsVerify, false, purpose);
  }
  const one = ["--skip-tls-verify-registry", "self.example:5000"];
  assert.equal(tls(one, "self.example:5000", "pull").skipTlsVerify, true);
  assert.equal(tls(one, "self.example:5000", "push").skipTlsVerify, true);
  assert.equal(tls(one, "other.example", "pull").skipTlsVerify, false);
});

test("--insecure is for pushes, --insecure-pull for pulls, --insecure-registry for both", () => {
  assert.equal(tls(["--insecure"], "r.example", "push").insecure, true);
  assert.equal(tls(["--insecure"], "r.example", "pull").insecure, false);
  assert.equal(tls(["--insecure-pull"], "r.example", "pull").insecure, true);
  assert.equal(tls(["--insecure-pull"], "r.example", "push").insecure, false);
  const reg = ["--insecure-registry", "r.example"];
  assert.deepEqual(
    (["push", "pull"] as const).map((p) => tls(reg, "r.example", p).insecure),
    [true, true],
  );
  assert.equal(tls(reg, "s.example", "pull").insecure, false);
});

test("--compression-level: 0 or less is the default; beyond the compression's range a usage error", () => {
  assert.equal(optionsOf([]).compressionLevel, undefined);
  assert.equal(optionsOf(["--compression-level=9"]).compressionLevel, 9);
  assert.equal(optionsOf(["--compression=zstd", "--compression-level=22"]).compressionLevel, 22);
  assert.throws(() => optionsOf(["--compression-level=10"]), /gzip levels go from 1 to 9/);
  assert.throws(() => optionsOf(["--compression=zstd", "--compression-level=23"]), /zstd levels go from 1 to 22/);
});

test("a --destination or registry --cache-repo that is not a reference is a usage error naming the flag", () => {
  const usage = (argv: string[], re: RegExp) =>
    assert.throws(
      () => optionsOf(argv),
      (e: unknown) => e instanceof Error && "exitCode" in e && e.exitCode === 2 && re.test(e.message),
    );
  usage(["--destination", "Reg.example/App:x"], /^invalid --destination "Reg\.example\/App:x": /);
  usage(["--cache=true", "--cache-repo", "reg.example/Cache"], /^invalid --cache-repo "reg\.example\/Cache": /);
  // Local caches and a cache repo without --cache are not references to check.
  assert.doesNotThrow(() => optionsOf(["--cache=true", "--cache-repo", "oci:/tmp/Cache"]));
  assert.doesNotThrow(() => optionsOf(["--cache-repo", "reg.example/Cache"]));
  // A cache repository given with a tag is a reference too (the store uses its name).
  assert.doesNotThrow(() => optionsOf(["--cache=true", "--cache-repo", "reg.example/cache:v1"]));
});
