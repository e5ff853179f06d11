import assert from "node:assert/strict";
import { test } from "node:test";
import { noProxyMatches } from "./s3-proxy.js";

test("NO_PROXY: hosts, subdomains, leading dots and wildcards, ports, lists; no partial names", () => {
  const cases: [string | undefined, string, number, boolean][] = [
    [undefined, "s3.amazonaws.com", 443, false],
    ["", "s3.amazonaws.com", 443, false],
    ["*", "anything.example", 80, true],
    ["amazonaws.com", "s3.amazonaws.com", 443, true],
    ["amazonaws.com", "amazonaws.com", 443, true],
    [".amazonaws.com", "bucket.s3.amazonaws.com", 443, true],
    ["*.amazonaws.com", "s3.amazonaws.com", 443, true],
    ["zonaws.com", "s3.amazonaws.com", 443, false],
    ["minio:9000", "minio", 9000, true],
    ["minio:9000", "minio", 9001, false],
    ["other, 127.0.0.1", "127.0.0.1", 4566, true],
    ["other 127.0.0.1:4566", "127.0.0.1", 4566, true],
    ["MINIO.Local", "minio.local", 80, true],
    ["[::1]", "::1", 80, true],
    ["10.0.0.0/8", "10.1.2.3", 80, false],
  ];
  for (const [noProxy, host, port, want] of cases) {
    assert.equal(noProxyMatches(noProxy, host, port), want, `${noProxy} ${host}:${port}`);
  }
});
