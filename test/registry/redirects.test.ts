import * as assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { hasCode } from "../../src/common/errors.js";
import { parseReference, RegistryClient, staticKeychain, type RegistryEvent } from "../../src/registry/index.js";
import { startFaultProxy, type FaultProxy } from "../support/fault-proxy.js";
import { withFakeRegistry } from "../support/fake-registry.js";
import { readAllStream, startRegistry, testImage, testLayer, type TestRegistry } from "../support/registry.js";

const amd64 = { os: "linux", architecture: "amd64" };
const creds = { username: "redirect-user", password: "redirect-pass-123" };
let reg: TestRegistry;
let proxy: FaultProxy;
before(async () => {
  reg = await startRegistry();
  proxy = await startFaultProxy({ target: reg.host, basicAuth: creds, redirectBlobs: true });
});
after(async () => {
  await proxy?.stop();
  await reg?.stop();
});

test("blob redirects to another host are followed without credentials; secrets stay out of errors", async () => {
  const layer = testLayer({ redirected: "blob" });
  const image = testImage([layer]);
  const events: RegistryEvent[] = [];
  const c = new RegistryClient({
    env: {},
    hostOptions: () => ({}),
    keychain: staticKeychain({ [proxy.host]: creds }),
    retries: 1,
    retryBaseDelayMs: 5,
    onEvent: (e) => events.push(e),
  });
  try {
    await c.pushImage(parseReference(`${proxy.host}/redir:1`), image);
    const pulled = await c.pullImage(parseReference(`${proxy.host}/redir:1`), { platform: amd64 });
    assert.equal(pulled.digest, image.digest);
    const gz = await readAllStream(await (pulled.layers[0] as (typeof pulled.layers)[number]).openCompressed());
    assert.ok(gz.equals(layer.gz));
    assert.ok(proxy.storageRequests.length >= 2, "config and layer came from storage");
    assert.ok(
      proxy.storageRequests.every((r) => r.authorization === undefined),
      "no credentials sent to storage",
    );

    // Storage failing: the error names the blob and registry, not the signed URL.
    await reg.stop();
    await assert.rejects(
      readAllStream(await (pulled.layers[0] as (typeof pulled.layers)[number]).openCompressed()),
      (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.ok(!e.message.includes("storage-secret-sig"), e.message);
        assert.ok(!e.message.includes(creds.password));
        return hasCode(e, "REGISTRY_UNAVAILABLE") || hasCode(e, "REGISTRY_UNREACHABLE") || hasCode(e, "REGISTRY_ERROR");
      },
    );
    const text = JSON.stringify(events);
    assert.ok(!text.includes("storage-secret-sig") && !text.includes(creds.password));
  } finally {
    await c.close();
  }
});

test("a 401 from where a blob redirect led never sends the registry's credentials to that host's realm", async () => {
  const image = testImage([testLayer({ foreign: "realm" })]);
  const seen: string[] = [];
  const foreign = createServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? "-"}`);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ token: "foreign-token" }));
  });
  await new Promise<void>((resolve) => foreign.listen(0, "127.0.0.1", resolve));
  const realm = `http://127.0.0.1:${(foreign.address() as AddressInfo).port}/token`;
  // Its own registry: the first test stops the shared one.
  const own = await startRegistry();
  const hostile = await startFaultProxy({
    target: own.host,
    basicAuth: creds,
    redirectBlobs: true,
    storageChallenge: `Bearer realm="${realm}",service="storage"`,
  });
  const c = new RegistryClient({
    env: {},
    hostOptions: () => ({}),
    keychain: staticKeychain({ [hostile.host]: creds }),
    retries: 0,
    retryBaseDelayMs: 5,
  });
  try {
    await c.pushImage(parseReference(`${own.host}/foreign:1`), image);
    await assert.rejects(c.pullImage(parseReference(`${hostile.host}/foreign:1`), { platform: amd64 }), (e: unknown) =>
      hasCode(e, "REGISTRY_UNAUTHORIZED"),
    );
    assert.deepEqual(seen, [], "the storage host's realm was asked for a token");
    // The registry's own challenge (Basic) still holds: its manifest is read with its credentials.
    assert.ok((await c.getManifest(parseReference(`${hostile.host}/foreign:1`))) !== undefined);
    assert.deepEqual(seen, []);
  } finally {
    await c.close();
    await hostile.stop();
    await own.stop();
    await new Promise<void>((resolve) => foreign.close(() => resolve()));
  }
});

/**
 * Pulls `<fake>/bad/app:1` from a plain-HTTP server answering with `handle` (given its own host:port), with
 * no retries; hands the pull's rejection and the host to `check`.
 */
async function pullFromFake(
  handle: (req: IncomingMessage, res: ServerResponse, host: string) => void,
  check: (pull: Promise<unknown>, host: string) => Promise<void>,
): Promise<void> {
  await withFakeRegistry(handle, (c, host) =>
    check(c.pullImage(parseReference(`${host}/bad/app:1`), { platform: amd64 }), host),
  );
}

test("a redirect whose Location is not a URL is the registry's protocol error, naming the repository", async () => {
  await pullFromFake(
    (req, res) => {
      if (req.url === "/v2/") res.writeHead(200).end("{}");
      else res.writeHead(307, { location: "http://[::1" }).end();
    },
    (pull, host) =>
      assert.rejects(
        pull,
        (e: unknown) =>
          hasCode(e, "REGISTRY_PROTOCOL_ERROR") &&
          e.message.includes(`${host}/bad/app: registry answered 307 with a Location header that is not a URL`),
      ),
  );
});

test("a token server answering invalid JSON is an auth error naming the repository, never quoting the answer", async () => {
  await pullFromFake(
    (req, res, host) => {
      if (req.url?.startsWith("/token"))
        res.writeHead(200, { "content-type": "application/json" }).end('{"token": tok3n-SECRET-value');
      else res.writeHead(401, { "www-authenticate": `Bearer realm="http://${host}/token",service="t"` }).end();
    },
    (pull, host) =>
      assert.rejects(pull, (e: unknown) => {
        assert.ok(hasCode(e, "REGISTRY_AUTH_FAILED"), String(e));
        assert.match(e.message, new RegExp(`${host}/bad/app: token server .* answered invalid JSON`));
        let text = "";
        for (let x: unknown = e; x instanceof Error; x = x.cause) text += `${x.message}\n`;
        assert.ok(!text.includes("SECRET"), text);
        return true;
      }),
  );
});

test("a token realm that redirects is followed (a moved endpoint), and the token it gives is used", async () => {
  const seen: string[] = [];
  await pullFromFake(
    (req, res, host) => {
      seen.push(`${req.url} ${req.headers.authorization ?? "-"}`);
      if (req.url?.startsWith("/token2")) {
        res.writeHead(200, { "content-type": "application/json" }).end('{"token":"moved-token"}');
      } else if (req.url?.startsWith("/token")) {
        res.writeHead(301, { location: `/token2?${req.url.split("?")[1] ?? ""}` }).end();
      } else if (req.headers.authorization === "Bearer moved-token") {
        res.writeHead(404, { "content-type": "application/json" });
        res.end(JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] }));
      } else res.writeHead(401, { "www-authenticate": `Bearer realm="http://${host}/token",service="t"` }).end();
    },
    (pull) => assert.rejects(pull, (e: unknown) => hasCode(e, "REGISTRY_NOT_FOUND") || assert.fail(String(e))),
  );
  assert.ok(
    seen.some((l) => l.startsWith("/token2?") && l.includes("scope=repository")),
    seen.join("\n"),
  );
});
