/**
 * Hostile registries through whole builds: a tiny HTTP server answers kiln's pulls with oversized
 * manifests and configs (streamed, up to 1 GiB), wrong media types, a layer whose bytes do not match its
 * digest, endless redirects, an index without kiln's platform, a token server streaming 1 GiB and a signed
 * schema 1 manifest. Every build must fail with a one-line
 * error naming the problem, in bounded time and with bounded memory (peak RSS of the kiln process).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import * as path from "node:path";
import { describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { useSuiteFixture } from "../support/suite-fixture.js";
import { Figures, runKilnMeasured } from "../reliability/support.js";

const figures = new Figures("hostile registries (whole builds)");
const MAX_RSS_KB = 512 * 1024;

const sha = (b: Buffer | string): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";

/** Streams `total` bytes of `fill` with backpressure; stops when the client goes away. */
function endless(res: ServerResponse, total: number, contentType: string, prefix = "", declareLength = true): void {
  res.writeHead(200, {
    "content-type": contentType,
    ...(declareLength ? { "content-length": String(total) } : {}),
  });
  let sent = 0;
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const pump = (): void => {
    if (sent === 0 && prefix) {
      res.write(prefix);
      sent += prefix.length;
    }
    while (sent < total) {
      const n = Math.min(chunk.length, total - sent);
      sent += n;
      if (!res.write(chunk.subarray(0, n))) {
        res.once("drain", pump);
        return;
      }
    }
    res.end();
  };
  res.on("close", () => res.removeAllListeners("drain"));
  pump();
}

describe("hostile registries", { timeout: 600_000 }, () => {
  let host = "";
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const url = req.url ?? "/";
    if (url === "/v2/" || url === "/v2") {
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
      return;
    }
    if (url.startsWith("/token")) {
      endless(res, 1024 ** 3, "application/json", '{"token":"', false);
      return;
    }
    const m = /^\/v2\/([a-z0-9-]+)\/(manifests|blobs)\/(.+)$/.exec(url);
    if (!m) {
      res.writeHead(404).end();
      return;
    }
    const [, repo, kind, ref] = m as unknown as [string, string, string, string];
    const goodLayerTar = Buffer.alloc(1024);
    const goodLayer = gzipSync(goodLayerTar);
    const config = Buffer.from(
      JSON.stringify({
        architecture: "amd64",
        os: "linux",
        rootfs: { type: "layers", diff_ids: [sha(goodLayerTar)] },
        config: {},
      }),
    );
    const manifest = (cfgDigest: string, cfgSize: number, layerDigest: string, layerSize: number): string =>
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: cfgDigest, size: cfgSize },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: layerDigest, size: layerSize }],
      });
    const fakeConfigDigest = sha("huge config");
    switch (repo) {
      case "huge-manifest":
        if (req.method === "HEAD") res.writeHead(200, { "content-type": OCI_MANIFEST }).end();
        else endless(res, 1024 ** 3, OCI_MANIFEST, '{"schemaVersion":2,"x":"');
        return;
      case "huge-manifest-chunked":
        if (req.method === "HEAD") res.writeHead(200, { "content-type": OCI_MANIFEST }).end();
        else endless(res, 1024 ** 3, OCI_MANIFEST, '{"schemaVersion":2,"x":"', false);
        return;
      case "huge-config":
        if (kind === "manifests") {
          const body = manifest(fakeConfigDigest, 1024 ** 3, sha(goodLayer), goodLayer.length);
          res.writeHead(200, { "content-type": OCI_MANIFEST, "docker-content-digest": sha(body) });
          res.end(req.method === "HEAD" ? undefined : body);
        } else endless(res, 1024 ** 3, "application/octet-stream", '{"x":"');
        return;
      case "wrong-media-type": {
        const body = "<html><body>not a manifest</body></html>";
        res.writeHead(200, { "content-type": "text/html" });
        res.end(req.method === "HEAD" ? undefined : body);
        return;
      }
      case "digest-mismatch": {
        const claimed = sha("some other layer");
        const body = manifest(sha(config), config.length, claimed, goodLayer.length);
        if (kind === "manifests") {
          res.writeHead(200, { "content-type": OCI_MANIFEST, "docker-content-digest": sha(body) });
          res.end(req.method === "HEAD" ? undefined : body);
        } else if (ref === sha(config)) res.writeHead(200).end(config);
        else res.writeHead(200, { "content-length": String(goodLayer.length) }).end(goodLayer);
        return;
      }
      case "path-diff-id": {
        // A config whose diff_id is a path: kiln names cache and store entries after diffIDs.
        const evil = Buffer.from(
          JSON.stringify({
            architecture: "amd64",
            os: "linux",
            rootfs: { type: "layers", diff_ids: ["sha256:/../../../../tmp/kiln-hostile-diff-id"] },
            config: {},
          }),
        );
        const body = manifest(sha(evil), evil.length, sha(goodLayer), goodLayer.length);
        if (kind === "manifests") {
          res.writeHead(200, { "content-type": OCI_MANIFEST, "docker-content-digest": sha(body) });
          res.end(req.method === "HEAD" ? undefined : body);
        } else if (ref === sha(evil)) res.writeHead(200).end(evil);
        else res.writeHead(200, { "content-length": String(goodLayer.length) }).end(goodLayer);
        return;
      }
      case "huge-token":
        // The registry asks for a token from a realm that streams 1 GiB.
        res.writeHead(401, { "www-authenticate": `Bearer realm="http://${host}/token",service="hostile"` });
        res.end();
        return;
      case "schema1-signed": {
        // A signed schema 1 manifest: its digest (over the payload without signatures) is never the raw bytes'.
        const body = JSON.stringify({
          schemaVersion: 1,
          name: "schema1-signed",
          tag: "latest",
          fsLayers: [],
          signatures: [],
        });
        res.writeHead(200, {
          "content-type": "application/vnd.docker.distribution.manifest.v1+prettyjws",
          "docker-content-digest": sha("the payload without its signatures"),
        });
        res.end(req.method === "HEAD" ? undefined : body);
        return;
      }
      case "hop-forever": {
        const n = Number(new URL(url, "http://x").searchParams.get("n") ?? "0");
        res.writeHead(307, { location: `http://${host}/v2/hop-forever/${kind}/${ref.split("?")[0]}?n=${n + 1}` });
        res.end();
        return;
      }
      case "no-platform": {
        const body = JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_INDEX,
          manifests: [
            { mediaType: OCI_MANIFEST, digest: sha("a"), size: 1, platform: { os: "linux", architecture: "arm64" } },
            { mediaType: OCI_MANIFEST, digest: sha("b"), size: 1, platform: { os: "windows", architecture: "amd64" } },
          ],
        });
        res.writeHead(200, { "content-type": OCI_INDEX, "docker-content-digest": sha(body) });
        res.end(req.method === "HEAD" ? undefined : body);
        return;
      }
      default:
        res.writeHead(404).end();
    }
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  const fx = useSuiteFixture("hostile-registry", {
    registry: "none",
    setup: async () => {
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    teardown: async () => {
      await figures.flush();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });

  const cases: { repo: string; expect: RegExp; todo?: string }[] = [
    { repo: "huge-manifest", expect: /manifest|too large|size|limit/i },
    { repo: "huge-manifest-chunked", expect: /manifest|too large|size|limit/i },
    { repo: "huge-config", expect: /config|too large|size|limit/i },
    { repo: "wrong-media-type", expect: /media type|mediatype|manifest|content-type/i },
    { repo: "digest-mismatch", expect: /digest|mismatch/i },
    { repo: "hop-forever", expect: /too many redirects.*307/i },
    { repo: "path-diff-id", expect: /diff_id that is not a digest/ },
    { repo: "no-platform", expect: /platform|linux\/amd64/i },
    { repo: "huge-token", expect: /token server .* answered more than 1048576 bytes/ },
    { repo: "schema1-signed", expect: /Docker schema 1 manifest, which kiln does not support/ },
  ];

  for (const c of cases) {
    test(`${c.repo}: a clear error, bounded time and memory`, c.todo ? { todo: c.todo } : {}, async () => {
      const ctx = path.join(fx.work, c.repo);
      await mkdir(ctx, { recursive: true });
      await writeFile(path.join(ctx, "Dockerfile"), `FROM ${host}/${c.repo}:latest\nRUN true\n`);
      const t0 = Date.now();
      const r = await runKilnMeasured(
        [
          "build",
          "-f",
          path.join(ctx, "Dockerfile"),
          "-c",
          ctx,
          "--no-push",
          "--insecure-pull",
          "--kaniko-dir",
          path.join(ctx, "state"),
          "--custom-platform",
          "linux/amd64",
        ],
        { timeoutMs: 120_000 },
      );
      const secs = (Date.now() - t0) / 1000;
      const line = (r.stderr.match(/(ERRO|error).*$/m)?.[0] ?? r.stderr.trim().split("\n").pop() ?? "").slice(0, 140);
      const ok =
        r.code !== 0 &&
        r.code !== 137 &&
        c.expect.test(r.stderr) &&
        !/\n\s+at /.test(r.stderr) &&
        (r.maxRssKb === 0 || r.maxRssKb < MAX_RSS_KB);
      figures.add(
        `registry: ${c.repo}`,
        1,
        ok ? 1 : 0,
        `exit ${r.code} in ${secs.toFixed(1)} s, max RSS ${(r.maxRssKb / 1024).toFixed(0)} MiB: ${line}`,
      );
      assert.notEqual(r.code, 0, "the build must fail");
      assert.notEqual(r.code, 137, `kiln hung and was killed:\n${r.stderr.slice(-800)}`);
      assert.match(r.stderr, c.expect);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.ok(r.maxRssKb < MAX_RSS_KB, `peak RSS ${r.maxRssKb} kB`);
    });
  }
});
