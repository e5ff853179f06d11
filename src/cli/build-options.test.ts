import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { stateDir } from "./build-options.js";
import { parseExecutorArgs } from "./flags/index.js";

const D = ["--no-push"];

test("the state dir: KANIKO_DIR wins over --kaniko-dir (kaniko), an empty one counts as unset", () => {
  const dir = (args: string[], env: Record<string, string | undefined>): string =>
    stateDir(parseExecutorArgs([...D, ...args], env).options, env);
  assert.equal(dir(["--kaniko-dir=/k3"], { KANIKO_DIR: "/k2" }), "/k2");
  assert.equal(dir([], { KANIKO_DIR: "/k2" }), "/k2");
  assert.equal(dir(["--kaniko-dir=/k3"], {}), "/k3");
  assert.equal(dir(["--kaniko-dir=/k3"], { KANIKO_DIR: "" }), "/k3");
});

test("the state dir without either: /kaniko when it is a directory, else $TMPDIR/kiln-<uid>", () => {
  const got = stateDir(parseExecutorArgs(D, {}).options, {});
  const kaniko = existsSync("/kaniko") && statSync("/kaniko").isDirectory();
  assert.equal(got, kaniko ? "/kaniko" : path.join(os.tmpdir(), `kiln-${process.getuid?.() ?? 0}`));
});
