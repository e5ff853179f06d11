import * as assert from "node:assert/strict";
import { Readable } from "node:stream";
import { test } from "node:test";
import { redactText, redactUrl, statusError } from "./errors.js";
import { isLocalRegistry, pingSchemes, readLimited } from "./host.js";

test("readLimited stops at the limit with the caller's error", async () => {
  const ok = await readLimited(Readable.from([Buffer.from("abc"), Buffer.from("de")]), 5, () => new Error("big"));
  assert.equal(ok.toString(), "abcde");
  await assert.rejects(
    readLimited(Readable.from([Buffer.from("abc"), Buffer.from("def")]), 5, () => new Error("big")),
    /big/,
  );
});

test("loopback and private registries may fall back to plain HTTP", () => {
  for (const h of ["localhost:5000", "127.0.0.1:5000", "[::1]:5000", "10.1.2.3", "192.168.0.10:443", "172.20.0.1"]) {
    assert.ok(isLocalRegistry(h), h);
  }
  for (const h of ["gcr.io", "172.32.0.1", "index.docker.io", "8.8.8.8:5000"]) assert.ok(!isLocalRegistry(h), h);
});

test("ping order: HTTPS only for secure remote registries; an insecure registry with a port tries plain HTTP first", () => {
  assert.deepEqual(pingSchemes("gcr.io", false), ["https"]);
  assert.deepEqual(pingSchemes("registry.example:5000", false), ["https"]);
  assert.deepEqual(pingSchemes("127.0.0.1:5000", false), ["https", "http"]);
  assert.deepEqual(pingSchemes("registry.example", true), ["https", "http"]); // 443 and 80 are different servers
  assert.deepEqual(pingSchemes("registry.example:5000", true), ["http", "https"]);
  assert.deepEqual(pingSchemes("127.0.0.1:5000", true), ["http", "https"]);
  assert.deepEqual(pingSchemes("[::1]:5000", true), ["http", "https"]);
  assert.deepEqual(pingSchemes("::1", true), ["https", "http"]);
});

test("error messages name registry, repository, status and OCI code; secrets are redacted", () => {
  const e = statusError(
    "pushing",
    "127.0.0.1:5000",
    "app",
    401,
    JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }),
  );
  assert.match(
    e.message,
    /^pushing 127\.0\.0\.1:5000\/app: 401 Unauthorized \(UNAUTHORIZED: authentication required\)/,
  );
  assert.equal(e.ociCode, "UNAUTHORIZED");
  assert.equal(e.status, 401);
  assert.equal(e.code, "REGISTRY_UNAUTHORIZED");
  assert.equal(redactUrl("https://u:p@s3.example.com/blob?X-Amz-Signature=abc#f"), "https://s3.example.com/blob");
  const t = redactText(
    "Bearer abc.def-ghi and https://user:pw@h/x?sig=1 and eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
  );
  assert.ok(!t.includes("abc.def-ghi") && !t.includes("pw@") && !t.includes("sig=1") && !t.includes("eyJzdWIi"), t);
  // A password holding an unencoded `@`: removed up to the last `@` before the path.
  assert.equal(redactText("GET https://u:pa@ss-SECRET@h/x failed"), "GET https://h/x failed");
  assert.equal(redactText("GET https://h/a@b failed"), "GET https://h/a@b failed");
});
