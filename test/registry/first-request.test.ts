/**
 * A registry's first request is its own ping (`RegistryHost.firstRequest`): no `GET /v2/` round trip
 * for a registry without auth, the challenge taken from the first answer for one with auth, and the
 * ping still deciding between schemes when the first request cannot (a TLS port asked in plain HTTP,
 * a closed port). Real registry behind the counting fault proxy.
 */
import * as assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import { hasCode } from "../../src/common/errors.js";
import {
  anonymousKeychain,
  parseReference,
  RegistryClient,
  staticKeychain,
  type Keychain,
} from "../../src/registry/index.js";
import { isRetryable } from "../../src/registry/retry.js";
import { startFaultProxy, type FaultProxy } from "../support/fault-proxy.js";
import { startRegistry, testImage, testLayer } from "../support/registry.js";
import { useSuiteFixture } from "../support/suite-fixture.js";

const amd64 = { os: "linux", architecture: "amd64" };

function client(keychain: Keychain = anonymousKeychain): RegistryClient {
  return new RegistryClient({
    env: {},
    hostOptions: () => ({ insecure: true }),
    keychain,
    retries: 1,
    retryBaseDelayMs: 10,
  });
}

function count(reqs: FaultProxy["requests"], method: string, re: RegExp): number {
  return reqs.filter((q) => q.method === method && re.test(q.path)).length;
}

const list = (reqs: FaultProxy["requests"]): string => reqs.map((r) => `${r.method} ${r.path}`).join("\n");

describe("a registry's first request is its own ping", () => {
  const fx = useSuiteFixture("first-request", { registry: "empty", proxy: true });

  test("without auth: no GET /v2/, and push and pull work over the scheme the first request settled", async () => {
    const image = testImage([testLayer({ first: "request" })]);
    const ref = parseReference(`${fx.proxy.host}/fr/app:1`);
    fx.proxy.requests.splice(0);
    const c = client();
    try {
      assert.equal(await c.pushImage(ref, image), image.digest);
      assert.equal((await c.pullImage(ref, { platform: amd64 })).digest, image.digest);
    } finally {
      await c.close();
    }
    const reqs = [...fx.proxy.requests];
    assert.equal(count(reqs, "GET", /^\/v2\/?$/), 0, list(reqs));
    assert.equal(count(reqs, "PUT", /^\/v2\/fr\/app\/manifests\/1$/), 1, list(reqs));
  });

  test("Basic auth: the first answer's challenge brings the credentials, one replay, no GET /v2/", async () => {
    const creds = { username: "first", password: "Pa55-first" };
    const proxy = await startFaultProxy({ target: fx.reg.host, basicAuth: creds });
    try {
      const image = testImage([testLayer({ basic: "first" })]);
      const ref = parseReference(`${proxy.host}/fr/basic:1`);
      const c = client(staticKeychain({ [proxy.host]: creds }));
      try {
        assert.equal(await c.pushImage(ref, image), image.digest);
        proxy.requests.splice(0);
        const fresh = client(staticKeychain({ [proxy.host]: creds }));
        try {
          assert.equal((await fresh.pullImage(ref, { platform: amd64 })).digest, image.digest);
        } finally {
          await fresh.close();
        }
      } finally {
        await c.close();
      }
      const reqs = [...proxy.requests];
      assert.equal(count(reqs, "GET", /^\/v2\/?$/), 0, list(reqs));
      // The manifest GET without credentials (401 + challenge), then with them.
      assert.equal(count(reqs, "GET", /^\/v2\/fr\/basic\/manifests\/1$/), 2, list(reqs));

      const anon = client();
      try {
        await assert.rejects(
          anon.getManifest(ref),
          (e: unknown) => hasCode(e, "REGISTRY_UNAUTHORIZED") && e instanceof Error && e.message.includes(proxy.host),
        );
      } finally {
        await anon.close();
      }
    } finally {
      await proxy.stop();
    }
  });

  test("Bearer auth: concurrent first requests share one token, no GET /v2/", async () => {
    const user = { username: "bearer", password: "Pa55-bearer" };
    const reg = await startRegistry({ token: true, htpasswd: user });
    const proxy = await startFaultProxy({ target: reg.host });
    try {
      const issuer = reg.tokenIssuer;
      assert.ok(issuer);
      const image = testImage([testLayer({ bearer: "first" })]);
      const ref = parseReference(`${proxy.host}/fr/bearer:1`);
      const c = client(staticKeychain({ [proxy.host]: user }));
      try {
        assert.equal(await c.pushImage(ref, image), image.digest);
      } finally {
        await c.close();
      }
      proxy.requests.splice(0);
      const before = issuer.requests.length;
      const anon = client();
      try {
        const [a, b] = await Promise.all([anon.getManifest(ref), anon.getManifest(ref)]);
        assert.equal(a?.digest, image.digest);
        assert.equal(b?.digest, image.digest);
      } finally {
        await anon.close();
      }
      const reqs = [...proxy.requests];
      assert.equal(count(reqs, "GET", /^\/v2\/?$/), 0, list(reqs));
      // Each GET once without a token (401 + challenge), once with the one token both waited for.
      assert.equal(count(reqs, "GET", /^\/v2\/fr\/bearer\/manifests\/1$/), 4, list(reqs));
      assert.equal(issuer.requests.length - before, 1);
    } finally {
      await proxy.stop();
      await reg.stop();
    }
  });

  test("plain HTTP dropped (a registry restarting behind a proxy): that retryable failure is reported, not HTTPS's", async () => {
    // Every request's connection is dropped; HTTPS then meets a plain-HTTP server ("wrong version number").
    const srv = createServer((req) => req.socket.destroy());
    await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
    const host = `127.0.0.1:${(srv.address() as AddressInfo).port}`;
    const c = new RegistryClient({
      env: {},
      hostOptions: () => ({ insecure: true }),
      keychain: anonymousKeychain,
      retries: 0,
    });
    try {
      await assert.rejects(c.getManifest(parseReference(`${host}/fr/dropped:1`)), (e: unknown) => {
        assert.ok(hasCode(e, "REGISTRY_UNREACHABLE"), String(e));
        assert.ok(!/wrong version number/i.test(String(e)), String(e));
        assert.ok(isRetryable(e), `not retryable: ${String(e)}`);
        return true;
      });
    } finally {
      await c.close();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    }
  });

  test("a closed port: the ping decides, and the error names the registry as before", async () => {
    const dead = await startRegistry();
    const host = dead.host;
    await dead.stop();
    const c = client();
    try {
      await assert.rejects(
        c.getManifest(parseReference(`${host}/fr/none:1`)),
        (e: unknown) => hasCode(e, "REGISTRY_UNREACHABLE") && e instanceof Error && e.message.includes(host),
      );
    } finally {
      await c.close();
    }
  });
});
