import * as assert from "node:assert/strict";
import { test } from "node:test";
import { hasCode } from "../common/errors.js";
import { parseReference } from "./reference.js";

const D = `sha256:${"a".repeat(64)}`;

test("normalises Docker Hub references", () => {
  const r = parseReference("busybox");
  assert.equal(r.registry, "index.docker.io");
  assert.equal(r.repository, "library/busybox");
  assert.equal(r.tag, "latest");
  assert.equal(r.toString(), "index.docker.io/library/busybox:latest");
  assert.equal(r.name, "index.docker.io/library/busybox");
  assert.equal(parseReference("docker.io/busybox:1.36").toString(), "index.docker.io/library/busybox:1.36");
  assert.equal(parseReference("docker.io/library/busybox").repository, "library/busybox");
  assert.equal(parseReference("user/app").toString(), "index.docker.io/user/app:latest");
  assert.equal(String(parseReference("index.docker.io/busybox")), "index.docker.io/library/busybox:latest");
});

test("registries with ports, localhost, deep paths, tags and digests", () => {
  const r = parseReference("127.0.0.1:5000/team/sub/app:v1.2-rc_3");
  assert.deepEqual(
    [r.registry, r.repository, r.tag, r.digest],
    ["127.0.0.1:5000", "team/sub/app", "v1.2-rc_3", undefined],
  );
  assert.equal(parseReference("localhost/app").registry, "localhost");
  assert.equal(parseReference("localhost:5000/app").registry, "localhost:5000");
  const d = parseReference(`gcr.io/distroless/static@${D}`);
  assert.equal(d.tag, undefined);
  assert.equal(d.digest, D);
  assert.equal(d.toString(), `gcr.io/distroless/static@${D}`);
  const both = parseReference(`quay.io/a/b:1@${D}`);
  assert.equal(both.toString(), `quay.io/a/b:1@${D}`);
  assert.equal(parseReference("[::1]:5000/app").registry, "[::1]:5000");
  assert.equal(parseReference("my-registry.example.com/a__b/c-d/e.f").repository, "a__b/c-d/e.f");
});

test("invalid references are INVALID_REFERENCE errors naming the input", () => {
  for (const bad of [
    "",
    "Busybox",
    "app:",
    "app:-bad",
    "a//b",
    "-app",
    "app@sha256:abc",
    "app@md5:" + "a".repeat(32),
    "host:99999/app",
    "registry.io/",
    " app",
    `app:${"x".repeat(129)}`,
  ]) {
    assert.throws(
      () => parseReference(bad),
      (e: unknown) => hasCode(e, "INVALID_REFERENCE") && e.message.includes(JSON.stringify(bad)),
      bad,
    );
  }
  assert.throws(() => parseReference("example.com/Team/app"), /must be lowercase/);
});
