import * as assert from "node:assert/strict";
import { test } from "node:test";
import { resolveSecretBuildArgs, secretBuildArgSecrets } from "./build-options.js";
import { parseExecutorArgs, UsageError } from "./flags/index.js";

const parse = (argv: string[], env: Record<string, string | undefined> = {}) =>
  parseExecutorArgs(["--no-push", ...argv], env).options;

test("--secret-build-arg is repeatable and takes its value from --build-arg or the environment", () => {
  const env = { TOKEN: "from-env-1234", OTHER: "other-env-val" };
  const o = parse(["--secret-build-arg", "TOKEN", "--secret-build-arg=KEY", "--build-arg", "KEY=given-value"], env);
  assert.deepEqual(o.secretBuildArgs, ["TOKEN", "KEY"]);
  assert.deepEqual(
    [...resolveSecretBuildArgs(o, env)],
    [
      ["TOKEN", "from-env-1234"],
      ["KEY", "given-value"],
    ],
  );
  // --build-arg NAME (no value) resolves from the environment before the secret is marked.
  const o2 = parse(["--build-arg", "OTHER", "--secret-build-arg", "OTHER"], env);
  assert.deepEqual([...resolveSecretBuildArgs(o2, env)], [["OTHER", "other-env-val"]]);
  assert.deepEqual(secretBuildArgSecrets(o2, env), ["other-env-val"]);
});

test("a secret build arg without a value, with a value on the flag, or too short is a usage error", () => {
  const o = parse(["--secret-build-arg", "NOPE"]);
  // The hint is the environment only: a value on the command line is readable in /proc/PID/cmdline.
  assert.throws(
    () => resolveSecretBuildArgs(o, {}),
    (e: unknown) =>
      e instanceof UsageError &&
      /NOPE/.test(e.message) &&
      /environment variable NOPE/.test(e.message) &&
      !/--build-arg|=VALUE/.test(e.message),
  );
  const inline = parse(["--secret-build-arg", "K=hunter22"]);
  assert.throws(
    () => resolveSecretBuildArgs(inline, {}),
    (e: unknown) => e instanceof UsageError && !e.message.includes("hunter22") && !/--build-arg|=VALUE/.test(e.message),
  );
  const short = parse(["--secret-build-arg", "S", "--build-arg", "S=abc"]);
  assert.throws(() => resolveSecretBuildArgs(short, {}), /shorter than 4/);
  assert.deepEqual(secretBuildArgSecrets(short, {}), []);
  // An empty value hides nothing and is allowed.
  const empty = parse(["--secret-build-arg", "E", "--build-arg", "E="]);
  assert.deepEqual([...resolveSecretBuildArgs(empty, {})], [["E", ""]]);
});
