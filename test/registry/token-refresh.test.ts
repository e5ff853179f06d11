import * as assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { parseReference, RegistryClient, staticKeychain } from "../../src/registry/index.js";

test("a token refused to many parallel requests is fetched anew once, not once per request", async () => {
  let fetches = 0;
  let host = "";
  let revoked = "";
  // The first token works until it is revoked (before its expiry); a later one is accepted.
  const server = createServer((req, res) => {
    if (req.url?.startsWith("/token")) {
      fetches++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ token: `t${fetches}`, expires_in: 300 }));
      return;
    }
    const auth = req.headers.authorization ?? "";
    if (auth === "" || auth === `Bearer ${revoked}`) {
      res.writeHead(401, { "www-authenticate": `Bearer realm="http://${host}/token",service="t"` }).end();
      return;
    }
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const c = new RegistryClient({
    env: {},
    hostOptions: () => ({ insecure: true }),
    keychain: staticKeychain({}),
    retries: 0,
    retryBaseDelayMs: 5,
  });
  try {
    // Settle the registry's challenge and the first token with one request, revoke it, then 8 at once.
    assert.equal(await c.getManifest(parseReference(`${host}/app:first`)), undefined);
    assert.equal(fetches, 1);
    revoked = "t1";
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => c.getManifest(parseReference(`${host}/app:t${i}`))),
    );
    assert.deepEqual(
      answers,
      Array.from({ length: 8 }, () => undefined),
      "each found no manifest, with a good token",
    );
    assert.equal(fetches, 2, "one token refused, one fetched in its place");
  } finally {
    await c.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
