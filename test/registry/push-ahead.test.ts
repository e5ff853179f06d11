/**
 * `RegistryClient.pushLayerAhead` and the image push that follows it on the same client: the push joins
 * an upload still running instead of starting another, and an upload stopped by whoever started it ahead
 * (another build on a client a library user shares) does not fail the push that joined it. A real registry
 * behind a proxy that holds requests (no timing); skopeo reads the pushed images.
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, test } from "node:test";
import { anonymousKeychain, parseReference, RegistryClient } from "../../src/registry/index.js";
import { testImage, testLayer } from "../support/registry.js";
import { useSuiteFixture } from "../support/suite-fixture.js";

function newClient(): RegistryClient {
  return new RegistryClient({
    env: {},
    hostOptions: () => ({}),
    keychain: anonymousKeychain,
    retries: 2,
    retryBaseDelayMs: 10,
  });
}

function skopeoDigest(ref: string): string {
  const out = execFileSync("skopeo", ["inspect", "--tls-verify=false", `docker://${ref}`], { encoding: "utf8" });
  return (JSON.parse(out) as { Digest: string }).Digest;
}

describe("push ahead on the registry client", () => {
  const fx = useSuiteFixture("push-ahead-client", { registry: "empty", proxy: true });

  test("the image's push joins a layer upload still running: the layer is uploaded once", async () => {
    const layer = testLayer({ a: "ahead-joined" });
    const image = testImage([layer]);
    const ref = parseReference(`${fx.proxy.host}/joined:latest`);
    fx.proxy.requests.splice(0);
    fx.proxy.injected.splice(0);
    // The layer's upload is held until the config's arrives: only a push that runs beside it releases it.
    fx.proxy.setRules([
      {
        method: "PUT",
        path: new RegExp(`/joined/blobs/uploads/.+${encodeURIComponent(layer.digest)}`),
        fault: "hold",
        until: {
          method: "PUT",
          path: new RegExp(`/joined/blobs/uploads/.+${encodeURIComponent(image.manifest.config.digest)}`),
        },
        maxMs: 20_000,
      },
    ]);
    const client = newClient();
    try {
      const ahead = client.pushLayerAhead(ref, layer, {});
      // The image's push starts once the layer's upload is under way (held at the proxy).
      while (fx.proxy.injected.length === 0) await new Promise((r) => setImmediate(r));
      assert.equal(await client.pushImage(ref, image), image.digest);
      await ahead;
      const list = fx.proxy.requests.map((q) => `${q.method} ${q.path}`).join("\n");
      assert.deepEqual(
        fx.proxy.injected.map((i) => i.released),
        ["until"],
        list,
      );
      const layerPuts = fx.proxy.requests.filter(
        (q) => q.method === "PUT" && q.path.includes(encodeURIComponent(layer.digest)),
      );
      assert.equal(layerPuts.length, 1, list);
      assert.equal(skopeoDigest(`${fx.reg.host}/joined:latest`), image.digest);
    } finally {
      fx.proxy.setRules([]);
      await client.close();
    }
  });

  test("an upload stopped by whoever started it ahead is pushed again by the image's push that joined it", async () => {
    const layer = testLayer({ b: "ahead-stopped" });
    const image = testImage([layer]);
    const ref = parseReference(`${fx.proxy.host}/stopped:latest`);
    fx.proxy.injected.splice(0);
    // The first upload session of the layer is held until its starter stops it (its client goes away).
    fx.proxy.setRules([
      {
        method: "POST",
        path: /\/stopped\/blobs\/uploads\/$/,
        fault: "hold",
        until: { path: /^$/ },
        maxMs: 20_000,
        times: 1,
      },
    ]);
    const client = newClient();
    const stop = new AbortController();
    try {
      const ahead = client.pushLayerAhead(ref, layer, { signal: stop.signal });
      // The image's push joins the held upload of the layer (and uploads its config), then the starter stops.
      const pushed = client.pushImage(ref, image);
      while (fx.proxy.injected.length === 0) await new Promise((r) => setImmediate(r));
      stop.abort();
      await ahead;
      assert.equal(await pushed, image.digest);
      assert.equal(fx.proxy.injected[0]?.released, "abandoned");
      assert.equal(skopeoDigest(`${fx.reg.host}/stopped:latest`), image.digest);
    } finally {
      fx.proxy.setRules([]);
      await client.close();
    }
  });
});
