import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { writeTree } from "../integration/helpers.js";
import { runKiln, type RunKilnResult } from "../support/kiln-cli.js";
import { useSuiteFixture } from "../support/suite-fixture.js";

// `--strict` (undefined variables) and `--dryrun` (COPY/ADD sources) through bin/kiln, on scratch images
// (no registry): the checks are wired into the build and fail with Dockerfile:line and the instruction.
describe("--strict undefined variables and --dryrun context sources (CLI)", () => {
  const fx = useSuiteFixture("strict-dryrun", { registry: "none" });
  let n = 0;
  const kiln = async (dockerfile: string[], args: string[], files: Record<string, string> = {}) => {
    const ctx = path.join(fx.work, `ctx-${++n}`);
    await writeTree(ctx, { Dockerfile: [...dockerfile, ""].join("\n"), ...files });
    const state = path.join(fx.work, `state-${n}`);
    const r = await runKiln(["build", "--context", ctx, "--no-push", "--kaniko-dir", state, ...args]);
    return { r, state };
  };
  const out = (r: RunKilnResult): string => r.stdout + r.stderr;

  test("--strict: a COPY using an undeclared variable fails naming Dockerfile:line and the variable; ARG declares it", async () => {
    const df = ["FROM scratch", "COPY a${SUFFIX}.txt /x"];
    const files = { "a.txt": "a\n" };
    const lenient = await kiln(df, [], files);
    assert.equal(lenient.r.code, 0, out(lenient.r));
    const strict = await kiln(df, ["--strict"], files);
    assert.notEqual(strict.r.code, 0, out(strict.r));
    assert.match(
      out(strict.r),
      /Dockerfile:2: COPY a\$\{SUFFIX\}\.txt \/x: usage of undefined variable '\$SUFFIX'.*\[UNDEFINED_VAR\]/,
    );
    const declared = await kiln(["FROM scratch", "ARG SUFFIX", "COPY a${SUFFIX}.txt /x"], ["--strict"], files);
    assert.equal(declared.r.code, 0, out(declared.r));
    // The Dockerfile can turn the check off, as with BuildKit.
    const skipped = await kiln(["# check=skip=UndefinedVar", ...df], ["--strict"], files);
    assert.equal(skipped.r.code, 0, out(skipped.r));
  });

  test("--strict: a FROM using an undeclared global ARG fails; a declared one and the platform args pass", async () => {
    const undeclared = await kiln(["FROM ${BASE:-scratch}", "LABEL a=b"], ["--strict"]);
    assert.notEqual(undeclared.r.code, 0, out(undeclared.r));
    assert.match(out(undeclared.r), /Dockerfile:1: FROM argument 'BASE' is not declared.*\[UNDEFINED_ARG_IN_FROM\]/);
    const declared = await kiln(["ARG BASE", "FROM ${BASE:-scratch}", "LABEL a=b"], ["--strict"]);
    assert.equal(declared.r.code, 0, out(declared.r));
    const platform = await kiln(["FROM --platform=$TARGETPLATFORM scratch", "LABEL a=b"], ["--strict"]);
    assert.equal(platform.r.code, 0, out(platform.r));
  });

  test("--dryrun: a COPY source missing from the context fails as the build does, before anything is written", async () => {
    const df = ["FROM scratch", "LABEL a=b", "COPY present.txt nope.txt /x/"];
    const files = { "present.txt": "p\n" };
    const dry = await kiln(df, ["--dryrun"], files);
    assert.notEqual(dry.r.code, 0, out(dry.r));
    const message = /Dockerfile:3: COPY present\.txt nope\.txt \/x\/: "\/nope\.txt": not found in the build context/;
    assert.match(out(dry.r), message);
    assert.deepEqual(await readdir(dry.state).catch(() => []), [], "the dry run wrote no state");
    const real = await kiln(df, [], files);
    assert.notEqual(real.r.code, 0, out(real.r));
    assert.match(out(real.r), message);
    // Present (and not .dockerignore'd) sources pass.
    const ok = await kiln(["FROM scratch", "COPY present.txt /x/"], ["--dryrun"], files);
    assert.equal(ok.r.code, 0, out(ok.r));
    assert.match(out(ok.r), /Dry run complete/);
    const ignored = await kiln(["FROM scratch", "COPY present.txt /x/"], ["--dryrun"], {
      ...files,
      ".dockerignore": "present.txt\n",
    });
    assert.notEqual(ignored.r.code, 0, out(ignored.r));
    assert.match(out(ignored.r), /Dockerfile:2: COPY present\.txt \/x\/: "\/present\.txt": not found/);
  });
});
