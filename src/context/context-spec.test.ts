import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KilnError } from "../common/errors.js";
import { parseConnectionString, sharedKeyAuthorization } from "./azure-context.js";
import { parseContextSpec, redactUrl } from "./context-spec.js";
import { gcsObjectUrl } from "./gcs-context.js";
import { parseGitmodules, resolveRelativeUrl } from "./git-context.js";

const cwd = "/work";

describe("parseContextSpec", () => {
  it("local directories: plain and dir://", () => {
    assert.deepEqual(parseContextSpec("ctx", cwd), { kind: "dir", path: "/work/ctx", scheme: false });
    assert.deepEqual(parseContextSpec("dir:///abs/x", cwd), { kind: "dir", path: "/abs/x", scheme: true });
    assert.deepEqual(parseContextSpec("DIR://rel", cwd), { kind: "dir", path: "/work/rel", scheme: true });
  });

  it("tarballs and stdin", () => {
    assert.deepEqual(parseContextSpec("tar:///a/ctx.tar.gz", cwd), { kind: "tar", path: "/a/ctx.tar.gz" });
    assert.deepEqual(parseContextSpec("tar://ctx.tar", cwd), { kind: "tar", path: "/work/ctx.tar" });
    assert.deepEqual(parseContextSpec("tar://stdin", cwd), { kind: "stdin" });
  });

  it("git:// in kaniko's form, https by default and http with GIT_PULL_METHOD=http", () => {
    assert.deepEqual(parseContextSpec("git://user:tok@example.com/org/repo.git#refs/heads/dev#abc123", cwd), {
      kind: "git",
      url: "https://example.com/org/repo.git",
      username: "user",
      password: "tok",
      ref: "refs/heads/dev",
      commit: "abc123",
      subdir: "",
    });
    const http = parseContextSpec("git://example.com/r", cwd, { pullMethod: "http" });
    assert.equal(http.kind === "git" && http.url, "http://example.com/r");
    assert.equal(http.kind === "git" && http.ref, "");
  });

  it("BuildKit's https://…/repo.git#ref:subdir", () => {
    assert.deepEqual(parseContextSpec("https://h/o/r.git#v1.0:docker/app", cwd), {
      kind: "git",
      url: "https://h/o/r.git",
      ref: "v1.0",
      commit: "",
      subdir: "docker/app",
    });
  });

  it("https tarballs, Azure blobs (with sovereign clouds) and plain http refused", () => {
    assert.deepEqual(parseContextSpec("https://h/ctx.tar.gz?sig=1", cwd), {
      kind: "https",
      url: "https://h/ctx.tar.gz?sig=1",
    });
    for (const host of [
      "blob.core.windows.net",
      "blob.core.chinacloudapi.cn",
      "blob.core.cloudapi.de",
      "blob.core.usgovcloudapi.net",
    ]) {
      const s = parseContextSpec(`https://acct.${host}/cont/dir/c.tar.gz`, cwd);
      assert.equal(s.kind, "azure");
      assert.ok(s.kind === "azure" && s.account === "acct" && s.container === "cont" && s.blob === "dir/c.tar.gz");
    }
    const d = parseContextSpec("https://acct.blob.core.windows.net/cont", cwd);
    assert.ok(d.kind === "azure" && d.blob === "context.tar.gz");
    assert.throws(
      () => parseContextSpec("http://h/ctx.tar.gz", cwd),
      (e: unknown) => e instanceof KilnError,
    );
  });

  it("buckets default to context.tar.gz; --bucket is gs://", () => {
    assert.deepEqual(parseContextSpec("s3://b", cwd), { kind: "s3", bucket: "b", key: "context.tar.gz" });
    assert.deepEqual(parseContextSpec("s3://b/p/c.tgz", cwd), { kind: "s3", bucket: "b", key: "p/c.tgz" });
    assert.deepEqual(parseContextSpec("gs://b/", cwd), { kind: "gs", bucket: "b", object: "context.tar.gz" });
    assert.deepEqual(parseContextSpec("", cwd, { bucket: "legacy" }), {
      kind: "gs",
      bucket: "legacy",
      object: "context.tar.gz",
    });
  });

  it("unknown schemes fail clearly", () => {
    assert.throws(() => parseContextSpec("ftp://x/y", cwd), /not supported/);
  });
});

describe("redactUrl", () => {
  it("drops userinfo and query strings", () => {
    assert.equal(redactUrl("https://u:secret@h/r.git#main"), "https://***@h/r.git#main");
    assert.equal(redactUrl("https://h/c.tar.gz?X-Amz-Signature=abc"), "https://h/c.tar.gz?***");
  });

  it("masks a password holding an unencoded @ whole (up to the last @ before the path)", () => {
    assert.equal(redactUrl("https://ci:p@ssw0rd-SECRET@example.com/ctx.tar.gz"), "https://***@example.com/ctx.tar.gz");
    assert.equal(redactUrl("git://bot:tok@n-SECRET@github.com/o/r.git#main"), "git://***@github.com/o/r.git#main");
    assert.equal(redactUrl("https://h/a@b.tar.gz"), "https://h/a@b.tar.gz");
  });
});

describe("git helpers", () => {
  it("parses .gitmodules and resolves relative URLs", () => {
    const mods = parseGitmodules('[submodule "lib"]\n\tpath = vendor/lib\n\turl = ../lib.git\n[core]\n\tx = y\n');
    assert.deepEqual(mods, [{ path: "vendor/lib", url: "../lib.git" }]);
    assert.equal(resolveRelativeUrl("https://h/org/app.git", "../lib.git"), "https://h/org/lib.git");
    assert.equal(resolveRelativeUrl("https://h/org/app.git/", "./sub.git"), "https://h/org/app.git/sub.git");
  });
});

describe("object store helpers", () => {
  it("GCS JSON API URL", () => {
    assert.equal(
      gcsObjectUrl("b", "dir/c.tar.gz", {}),
      "https://storage.googleapis.com/storage/v1/b/b/o/dir%2Fc.tar.gz?alt=media",
    );
    assert.equal(
      gcsObjectUrl("b", "o", { emulatorHost: "127.0.0.1:9" }),
      "http://127.0.0.1:9/storage/v1/b/b/o/o?alt=media",
    );
  });

  it("Azure connection strings and shared-key signatures", () => {
    assert.deepEqual(
      parseConnectionString("DefaultEndpointsProtocol=http;AccountKey=a2V5;BlobEndpoint=http://h:1/acct;"),
      {
        accountKey: "a2V5",
        blobEndpoint: "http://h:1/acct",
      },
    );
    const headers = { "x-ms-date": "Thu, 01 Jan 2026 00:00:00 GMT", "x-ms-version": "2021-08-06" };
    const a = sharedKeyAuthorization("acct", "a2V5", new URL("https://acct.blob.core.windows.net/c/b"), headers);
    assert.match(a, /^SharedKey acct:[A-Za-z0-9+/]{43}=$/);
    // Deterministic, and sensitive to the resource signed.
    assert.equal(a, sharedKeyAuthorization("acct", "a2V5", new URL("https://acct.blob.core.windows.net/c/b"), headers));
    assert.notEqual(
      a,
      sharedKeyAuthorization("acct", "a2V5", new URL("https://acct.blob.core.windows.net/c/x"), headers),
    );
  });
});
