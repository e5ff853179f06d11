import * as assert from "node:assert/strict";
import { test } from "node:test";
import { parseWwwAuthenticate } from "./www-authenticate.js";

test("parses a Docker Hub bearer challenge", () => {
  const [c, ...rest] = parseWwwAuthenticate(
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"',
  );
  assert.equal(rest.length, 0);
  assert.equal(c?.scheme, "bearer");
  assert.deepEqual(c?.params, {
    realm: "https://auth.docker.io/token",
    service: "registry.docker.io",
    scope: "repository:samalba/my-app:pull,push",
  });
});

test("parses several challenges, escapes and unquoted values", () => {
  const cs = parseWwwAuthenticate(['Basic realm="a \\"b\\""', 'Bearer realm=https://x/t, error="invalid_token"']);
  assert.equal(cs.length, 2);
  assert.deepEqual(cs[0], { scheme: "basic", params: { realm: 'a "b"' } });
  assert.deepEqual(cs[1], { scheme: "bearer", params: { realm: "https://x/t", error: "invalid_token" } });
  assert.deepEqual(parseWwwAuthenticate(undefined), []);
});
