import * as assert from "node:assert/strict";
import { test } from "node:test";
import { parseReference, staticKeychain } from "../../src/registry/index.js";
import { withFakeRegistry } from "../support/fake-registry.js";

const manifestUnknown = JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] });

test("a token refused to many parallel requests is fetched anew once, not once per request", async () => {
  let fetches = 0;
  let revoked = "";
  // The first token works until it is revoked (before its expiry); a later one is accepted.
  await withFakeRegistry(
    (req, res, host) => {
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
      res.writeHead(404, { "content-type": "application/json" }).end(manifestUnknown);
    },
    async (c, host) => {
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
    },
  );
});

test("an identity token's OAuth2 POST answered by a redirect falls back to the GET, which follows the realm", async () => {
  const seen: string[] = [];
  await withFakeRegistry(
    (req, res, host) => {
      seen.push(`${req.method} ${req.url?.split("?")[0]}`);
      if (req.url?.startsWith("/token2")) {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: "moved-token" }));
      } else if (req.url?.startsWith("/token")) {
        res.writeHead(307, { location: `/token2?${req.url.split("?")[1] ?? ""}` }).end();
      } else if (req.headers.authorization === "Bearer moved-token") {
        res.writeHead(404, { "content-type": "application/json" }).end(manifestUnknown);
      } else res.writeHead(401, { "www-authenticate": `Bearer realm="http://${host}/token",service="t"` }).end();
    },
    async (c, host) => {
      assert.equal(await c.getManifest(parseReference(`${host}/app:1`)), undefined);
      assert.ok(seen.includes("POST /token") && seen.includes("GET /token2"), seen.join("\n"));
    },
    (host) => staticKeychain({ [host]: { identityToken: "refresh-me" } }),
  );
});
