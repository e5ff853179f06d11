/**
 * The metadata cache (`RegistryClientOptions.metadataCacheDir`): a second pull of a multi-platform
 * base resolves only its tag against the registry; the platform manifest and the config come from the
 * cache, checked against their digests. Real registry behind the counting proxy.
 */
import * as assert from "node:assert/strict";
import { readdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { describe, test } from "node:test";
import { anonymousKeychain, parseReference, RegistryClient } from "../../src/registry/index.js";
import type { FaultProxy } from "../support/fault-proxy.js";
import { testImage, testLayer } from "../support/registry.js";
import { useSuiteFixture } from "../support/suite-fixture.js";

const OCI_INDEX = "application/vnd.oci.image.index.v1+json";

function client(metadataCacheDir?: string): RegistryClient {
  return new RegistryClient({
    env: {},
    hostOptions: () => ({ insecure: true }),
    keychain: anonymousKeychain,
    retries: 1,
    retryBaseDelayMs: 10,
    ...(metadataCacheDir !== undefined ? { metadataCacheDir } : {}),
  });
}

function count(reqs: FaultProxy["requests"], method: string, re: RegExp): number {
  return reqs.filter((q) => q.method === method && re.test(q.path)).length;
}

describe("metadata cache", () => {
  const fx = useSuiteFixture("metadata-cache", { registry: "empty", proxy: true });

  test("a second pull of a multi-platform base asks the registry for its tag only", async () => {
    const image = testImage([testLayer({ meta: "cache" })]);
    const pusher = client();
    try {
      await pusher.pushImage(parseReference(`${fx.proxy.host}/mc/base@${image.digest}`), image);
    } finally {
      await pusher.close();
    }
    const index = {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        {
          mediaType: image.mediaType,
          digest: image.digest,
          size: image.rawManifest.length,
          platform: { os: "linux", architecture: "amd64" },
        },
      ],
    };
    const put = await fetch(`${fx.reg.url}/v2/mc/base/manifests/latest`, {
      method: "PUT",
      headers: { "content-type": OCI_INDEX },
      body: JSON.stringify(index),
    });
    assert.equal(put.status, 201);

    const dir = path.join(fx.work, "image-metadata");
    const ref = parseReference(`${fx.proxy.host}/mc/base:latest`);
    const amd64 = { os: "linux", architecture: "amd64" };
    /** One pull by a fresh client sharing `dir`; returns the requests the proxy saw. */
    const pull = async (): Promise<FaultProxy["requests"]> => {
      fx.proxy.requests.splice(0);
      const c = client(dir);
      try {
        assert.equal((await c.pullImage(ref, { platform: amd64 })).digest, image.digest);
      } finally {
        await c.close();
      }
      return [...fx.proxy.requests];
    };
    for (const round of [1, 2]) {
      const reqs = await pull();
      const list = reqs.map((q) => `${q.method} ${q.path}`).join("\n");
      assert.equal(count(reqs, "GET", /\/mc\/base\/manifests\/latest$/), 1, list);
      const byDigest = count(reqs, "GET", /\/mc\/base\/manifests\/sha256:/);
      const blobs = count(reqs, "GET", /\/mc\/base\/blobs\//);
      assert.deepEqual([byDigest, blobs], round === 1 ? [1, 1] : [0, 0], `round ${round}:\n${list}`);
    }
    const kept = (await readdir(dir)).sort();
    assert.ok(kept.includes(`${image.digest.slice(7)}.json`), "the platform manifest is kept");
    assert.equal(kept.length, 2, "and the config: a tag is never kept");

    // A damaged file is not used: the manifest is fetched again (and the pull still gives the image).
    await writeFile(path.join(dir, `${image.digest.slice(7)}.json`), "{}");
    assert.equal(count(await pull(), "GET", /\/mc\/base\/manifests\/sha256:/), 1);
  });
});
