import assert from "node:assert/strict";
import { test } from "node:test";
import { standInFor } from "./corpus.js";
import { rewriteDockerfile } from "./rewrite.js";

const refFor = (s: string): string => `127.0.0.1:5000/${s}:x`;

test("standInFor maps image families and rejects the rest", () => {
  assert.equal(standInFor("alpine@sha256:5ce5f501c457015c4b91f91a15ac69157d9b06f1a75cf9107bf2b62e0843983a"), "busybox");
  assert.equal(standInFor("docker.io/library/busybox:latest@sha256:afe6"), "busybox");
  assert.equal(standInFor("docker.io/debian:bullseye-slim"), "debian");
  assert.equal(standInFor("ubuntu:18.04"), "debian");
  assert.equal(standInFor("gcr.io/kaniko-test/onbuild-base:latest"), "onbuild-base");
  assert.equal(standInFor("fedora@sha256:c4cc"), undefined);
  assert.equal(standInFor("gcr.io/distroless/base:latest"), undefined);
});

test("rewriteDockerfile rewrites external FROMs and COPY --from, keeps stages and scratch", () => {
  const text = [
    "FROM alpine:3.8 AS Build",
    "FROM build",
    "FROM scratch",
    "COPY --from=build /a /a",
    "COPY --from=0 /a /b",
    "COPY --from=debian:10.13 /etc/os-release /c",
    "from --platform=linux/amd64 busybox as other",
  ].join("\n");
  const out = rewriteDockerfile(text, undefined, refFor);
  assert.equal(out.changed, true);
  assert.deepEqual(out.text.split("\n"), [
    "FROM 127.0.0.1:5000/busybox:x AS Build",
    "FROM build",
    "FROM scratch",
    "COPY --from=build /a /a",
    "COPY --from=0 /a /b",
    "COPY --from=127.0.0.1:5000/debian:x /etc/os-release /c",
    "from --platform=linux/amd64 127.0.0.1:5000/busybox:x as other",
  ]);
});

test("rewriteDockerfile uses the resolved value for ARG-built FROMs, except scratch", () => {
  const text = "ARG IMAGE=busybox:latest\nFROM $IMAGE\nARG image\nFROM ${image}\n";
  const out = rewriteDockerfile(text, ["busybox:latest", "scratch"], refFor);
  assert.equal(out.text, "ARG IMAGE=busybox:latest\nFROM 127.0.0.1:5000/busybox:x\nARG image\nFROM ${image}\n");
});

test("rewriteDockerfile sends public URLs in ADD/ENV/ARG to the local server, not in comments or RUN", () => {
  const text = [
    "# see https://example.com/x",
    "ADD https://github.com/o/r/archive/$V.tar.gz /tmp/r.tgz",
    "ENV URL=https://raw.githubusercontent.com/a/b/README.md",
    "RUN echo https://example.com",
  ].join("\n");
  const out = rewriteDockerfile(text, undefined, refFor, "http://127.0.0.1:9");
  assert.deepEqual(out.text.split("\n"), [
    "# see https://example.com/x",
    "ADD http://127.0.0.1:9/github.com/o/r/archive/$V.tar.gz /tmp/r.tgz",
    "ENV URL=http://127.0.0.1:9/raw.githubusercontent.com/a/b/README.md",
    "RUN echo https://example.com",
  ]);
  assert.equal(rewriteDockerfile("FROM scratch\nCOPY a /a\n", undefined, refFor).changed, false);
});
