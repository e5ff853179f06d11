import * as assert from "node:assert/strict";
import { test } from "node:test";
import { KilnError } from "../common/errors.js";
import { assertNoSecretBuildArgs, secretBuildArgValues } from "./secret-build-args.js";

const args = { TOKEN: "s3cr3t-value", PLAIN: "visible", EMPTY: "" };

test("only the build args marked secret, with a value, are checked", () => {
  assert.deepEqual([...secretBuildArgValues(args, ["TOKEN", "EMPTY", "MISSING"])], [["TOKEN", "s3cr3t-value"]]);
  assert.deepEqual([...secretBuildArgValues(args, undefined)], []);
});

test("a config without the secret value passes; plain build args may be stored", () => {
  const config = {
    config: { Env: ["PLAIN=visible"], Labels: { a: "visible" } },
    history: [{ created_by: "RUN /bin/sh -c echo $TOKEN # buildkit" }],
  };
  assert.doesNotThrow(() => assertNoSecretBuildArgs(config, args, ["TOKEN"]));
});

test("the secret value in Env, a label, a label key or the history fails, naming the field but not the value", () => {
  const cases: [unknown, RegExp][] = [
    [{ config: { Env: ["PATH=/bin", "X=pre-s3cr3t-value"] } }, /config\.Env\[1\]/],
    [{ config: { Labels: { tok: "s3cr3t-value" } } }, /config\.Labels\.tok/],
    [{ config: { Labels: { "s3cr3t-value": "x" } } }, /config\.Labels\.<key>/],
    [{ history: [{ created_by: "ENV X=s3cr3t-value" }] }, /history\[0\]\.created_by/],
  ];
  for (const [config, field] of cases) {
    assert.throws(
      () => assertNoSecretBuildArgs(config, args, ["TOKEN"]),
      (e: unknown) => {
        assert.ok(e instanceof KilnError);
        assert.equal(e.code, "SECRET_BUILD_ARG_STORED");
        assert.match(e.message, /secret build arg TOKEN/);
        assert.match(e.message, field);
        assert.ok(!e.message.includes("s3cr3t-value"), e.message);
        return true;
      },
    );
  }
});

test("a value set from a secret arg (part of it) in the config fails, naming the name and the arg", () => {
  const secret = "ghp_0123456789abcdef";
  const derived = [{ name: "T2", arg: false, from: "TOKEN", value: secret.slice(4) }];
  const config = { config: { Env: [`T2=${secret.slice(4)}`] } };
  assert.throws(
    () => assertNoSecretBuildArgs(config, { TOKEN: secret }, ["TOKEN"], derived),
    (e: unknown) =>
      e instanceof KilnError &&
      e.code === "SECRET_BUILD_ARG_STORED" &&
      e.message.includes("T2 (set from TOKEN)") &&
      e.message.includes("config.Env[0]") &&
      !e.message.includes(secret.slice(4)),
  );
  // Untracked (it held no part of the secret), the same text is not refused.
  assert.doesNotThrow(() =>
    assertNoSecretBuildArgs(config, { TOKEN: secret }, ["TOKEN"], [{ ...derived[0]!, value: "" }]),
  );
});

test("text that only shares characters with a secret is not refused; a part expanded from it is", () => {
  // A secret URL shares `https://` with every label holding a URL: that is no part of the secret.
  const secret = "https://ci:tok3n@pypi.example.com/simple";
  const config = { config: { Labels: { src: "https://github.com/o/r", x: "ci:tok3n@pypi" } } };
  assert.doesNotThrow(() => assertNoSecretBuildArgs(config, { URL: secret }, ["URL"]));
  const word = [{ name: "", arg: false, from: "URL", value: "ci:tok3n@pypi" }];
  assert.throws(
    () => assertNoSecretBuildArgs(config, { URL: secret }, ["URL"], word),
    /secret build arg URL \(a part of it\) would be stored in the image config \(config\.Labels\.x\)/,
  );
});
