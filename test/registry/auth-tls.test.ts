import * as assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { hasCode } from "../../src/common/errors.js";
import {
  anonymousKeychain,
  parseReference,
  RegistryClient,
  RegistryError,
  staticKeychain,
  type RegistryClientOptions,
  type RegistryEvent,
} from "../../src/registry/index.js";
import { startRegistry, testImage, testLayer, type TestRegistry } from "../support/registry.js";

const amd64 = { os: "linux", architecture: "amd64" };
const USER = "kiln";
const PASS = "s3cret-Pa55word";
const PERM_TEXT =
  "error checking push permissions -- make sure you entered the correct tag name, and that you are authenticated correctly, and try again";

function client(extra: Partial<RegistryClientOptions>): { c: RegistryClient; events: RegistryEvent[] } {
  const events: RegistryEvent[] = [];
  return {
    c: new RegistryClient({
      env: {},
      hostOptions: () => ({}),
      keychain: anonymousKeychain,
      retries: 1,
      retryBaseDelayMs: 10,
      onEvent: (e) => events.push(e),
      ...extra,
    }),
    events,
  };
}

describe("TLS + htpasswd Basic auth", () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry({ tls: true, htpasswd: { username: USER, password: PASS } });
  });
  after(async () => reg?.stop());

  test("push and pull with a CA file and Basic credentials from a docker config.json", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "kiln-dockercfg-"));
    try {
      writeFileSync(
        path.join(dir, "config.json"),
        JSON.stringify({
          auths: { [`https://${reg.host}`]: { auth: Buffer.from(`${USER}:${PASS}`).toString("base64") } },
        }),
      );
      const { c } = client({
        env: { DOCKER_CONFIG: dir },
        keychain: undefined,
        hostOptions: (r) => (r === reg.host ? { caFiles: [reg.caFile as string] } : {}),
      });
      const image = testImage([testLayer({ tls: "yes" })]);
      const ref = parseReference(`${reg.host}/secure/app:1`);
      await c.checkPushPermission(ref);
      assert.equal(await c.pushImage(ref, image), image.digest);
      assert.equal((await c.pullImage(ref, { platform: amd64 })).digest, image.digest);
      await c.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("CA bundle from SSL_CERT_DIR, and skipTlsVerify", async () => {
    const certDir = mkdtempSync(path.join(tmpdir(), "kiln-certdir-"));
    try {
      writeFileSync(path.join(certDir, "ca.crt"), (await import("node:fs")).readFileSync(reg.caFile as string));
      const creds = staticKeychain({ [reg.host]: { username: USER, password: PASS } });
      const a = client({ env: { SSL_CERT_DIR: certDir }, keychain: creds });
      await a.c.checkPushPermission(parseReference(`${reg.host}/x:1`));
      await a.c.close();
      const b = client({ keychain: creds, hostOptions: () => ({ skipTlsVerify: true }) });
      await b.c.checkPushPermission(parseReference(`${reg.host}/x:1`));
      await b.c.close();
    } finally {
      rmSync(certDir, { recursive: true, force: true });
    }
  });

  test("an insecure registry with a port that speaks TLS: the plain-HTTP ping gets 400 and HTTPS follows", async () => {
    const { c } = client({
      keychain: staticKeychain({ [reg.host]: { username: USER, password: PASS } }),
      hostOptions: (r) => (r === reg.host ? { insecure: true, caFiles: [reg.caFile as string] } : {}),
    });
    const image = testImage([testLayer({ insecureTls: "yes" })]);
    const ref = parseReference(`${reg.host}/secure/insecure-flag:1`);
    await c.checkPushPermission(ref);
    assert.equal(await c.pushImage(ref, image), image.digest);
    assert.equal((await c.pullImage(ref, { platform: amd64 })).digest, image.digest);
    await c.close();
  });

  test("an untrusted certificate is a clear error with a hint, and is not retried", async () => {
    const { c, events } = client({ keychain: staticKeychain({ [reg.host]: { username: USER, password: PASS } }) });
    await assert.rejects(
      c.pullImage(parseReference(`${reg.host}/secure/app:1`), { platform: amd64 }),
      (e: unknown) =>
        hasCode(e, "REGISTRY_UNREACHABLE") &&
        e.message.includes(`${reg.host}/secure/app: `) &&
        e.message.includes("--registry-certificate"),
    );
    assert.equal(events.filter((e) => e.kind === "retry").length, 0);
    await c.close();
  });

  test(
    "a Basic registry and credentials holding only a token end in one clear 401, not a loop of requests",
    { timeout: 30_000 },
    async () => {
      const tokenOnly = client({
        hostOptions: () => ({ caFiles: [reg.caFile as string] }),
        keychain: staticKeychain({ [reg.host]: { identityToken: "only-a-token" } }),
      });
      try {
        await assert.rejects(
          tokenOnly.c.pullImage(parseReference(`${reg.host}/app:1`), { platform: amd64 }),
          (e: unknown) => hasCode(e, "REGISTRY_UNAUTHORIZED") && e.message.includes(`${reg.host}/app`),
        );
      } finally {
        await tokenOnly.c.close();
      }
    },
  );

  test("missing or wrong credentials: kaniko's push-permission text, 401, no secret in the message", async () => {
    const anon = client({ hostOptions: () => ({ caFiles: [reg.caFile as string] }) });
    await assert.rejects(anon.c.checkPushPermission(parseReference(`${reg.host}/app:1`)), (e: unknown) => {
      assert.ok(e instanceof RegistryError);
      assert.equal(e.code, "PUSH_PERMISSION_DENIED");
      assert.equal(e.status, 401);
      assert.ok(e.message.startsWith(PERM_TEXT), e.message);
      assert.ok(e.message.includes(`${reg.host}/app`), e.message);
      return true;
    });
    await anon.c.close();
    const wrong = client({
      hostOptions: () => ({ caFiles: [reg.caFile as string] }),
      keychain: staticKeychain({ [reg.host]: { username: USER, password: "wrong-password-xyz" } }),
    });
    await assert.rejects(
      wrong.c.pushImage(parseReference(`${reg.host}/app:1`), testImage([testLayer({ a: "b" })])),
      (e: unknown) => {
        assert.ok(e instanceof RegistryError);
        assert.equal(e.code, "REGISTRY_UNAUTHORIZED");
        assert.match(e.message, /^pushing 127\.0\.0\.1:\d+\/app: 401 Unauthorized/);
        assert.ok(!e.message.includes("wrong-password-xyz"));
        assert.ok(!e.message.includes(Buffer.from(`${USER}:wrong-password-xyz`).toString("base64")));
        return true;
      },
    );
    await wrong.c.close();
  });
});

describe("Bearer token auth", () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry({
      token: { identityTokens: { "refresh-abc": USER } },
      htpasswd: { username: USER, password: PASS },
    });
  });
  after(async () => reg?.stop());
  const creds = () => staticKeychain({ [reg.host]: { username: USER, password: PASS } });

  test("push with credentials, anonymous pull-only token, anonymous push denied", async () => {
    const issuer = reg.tokenIssuer;
    assert.ok(issuer);
    const { c } = client({ keychain: creds() });
    const image = testImage([testLayer({ token: "auth" })]);
    await c.pushImage(parseReference(`${reg.host}/tok/app:1`), image);
    const pushReq = issuer.requests.find((r) => r.scopes.includes("repository:tok/app:pull,push"));
    assert.ok(pushReq);
    assert.equal(pushReq.account, USER);
    await c.close();

    const anon = client({});
    const pulled = await anon.c.pullImage(parseReference(`${reg.host}/tok/app:1`), { platform: amd64 });
    assert.equal(pulled.digest, image.digest);
    assert.ok(issuer.requests.some((r) => r.account === "" && r.granted.includes("repository:tok/app:pull")));
    await assert.rejects(anon.c.checkPushPermission(parseReference(`${reg.host}/tok/app:1`)), (e: unknown) =>
      hasCode(e, "PUSH_PERMISSION_DENIED"),
    );
    await anon.c.close();
  });

  test("cross-repository mount asks for pull on the source repository", async () => {
    const issuer = reg.tokenIssuer;
    assert.ok(issuer);
    const { c, events } = client({ keychain: creds() });
    const image = testImage([testLayer({ mount: "me" })]);
    await c.pushImage(parseReference(`${reg.host}/src/base:1`), image);
    const pulled = await c.pullImage(parseReference(`${reg.host}/src/base:1`), { platform: amd64 });
    await c.pushImage(parseReference(`${reg.host}/dst/app:1`), pulled);
    assert.equal(events.filter((e) => e.kind === "blob-mounted").length, 1);
    assert.ok(
      issuer.requests.some(
        (r) => r.scopes.includes("repository:dst/app:pull,push") && r.scopes.includes("repository:src/base:pull"),
      ),
    );
    await c.close();
  });

  test("an expired token is answered by one re-authentication", async () => {
    const issuer = reg.tokenIssuer;
    assert.ok(issuer);
    const { c } = client({ keychain: creds() });
    const image = testImage([testLayer({ expired: "token" })]);
    issuer.expireNext(1);
    const before = issuer.requests.length;
    assert.equal(await c.pushImage(parseReference(`${reg.host}/exp/app:1`), image), image.digest);
    assert.ok(issuer.requests.length >= before + 2, "a second token was fetched");
    // Two expired tokens in a row: re-auth happens once only, the request fails with 401.
    const d = client({ keychain: creds() });
    issuer.expireNext(2);
    await assert.rejects(d.c.getManifest(parseReference(`${reg.host}/exp/app:1`)), (e: unknown) =>
      hasCode(e, "REGISTRY_UNAUTHORIZED"),
    );
    issuer.expireNext(0);
    await c.close();
    await d.c.close();
  });

  test("OAuth2 identity token (refresh_token grant) and a registry token used as-is", async () => {
    const issuer = reg.tokenIssuer;
    assert.ok(issuer);
    const { c } = client({ keychain: staticKeychain({ [reg.host]: { identityToken: "refresh-abc" } }) });
    const image = testImage([testLayer({ oauth: "2" })]);
    await c.pushImage(parseReference(`${reg.host}/oauth/app:1`), image);
    assert.ok(issuer.requests.some((r) => r.method === "POST" && r.account === USER));
    await c.close();

    const tokenRes = await fetch(`${issuer.realm}?service=${issuer.service}&scope=repository:oauth/app:pull`, {
      headers: { authorization: `Basic ${Buffer.from(`${USER}:${PASS}`).toString("base64")}` },
    });
    const { token } = (await tokenRes.json()) as { token: string };
    const before = issuer.requests.length;
    const rt = client({ keychain: staticKeychain({ [reg.host]: { registryToken: token } }) });
    const got = await rt.c.getManifest(parseReference(`${reg.host}/oauth/app:1`));
    assert.equal(got?.digest, image.digest);
    assert.equal(issuer.requests.length, before, "no token exchange with a registrytoken");
    await rt.c.close();
  });
});

describe("mutual TLS", () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry({ tls: true, mtls: true });
  });
  after(async () => reg?.stop());

  test("a client certificate is presented when configured, and required by the registry", async () => {
    const ref = parseReference(`${reg.host}/mtls/app:1`);
    const withCert = client({
      hostOptions: () => ({
        caFiles: [reg.caFile as string],
        clientCert: reg.clientCert as { cert: string; key: string },
      }),
    });
    const image = testImage([testLayer({ mtls: "ok" })]);
    assert.equal(await withCert.c.pushImage(ref, image), image.digest);
    assert.equal((await withCert.c.pullImage(ref, { platform: amd64 })).digest, image.digest);
    await withCert.c.close();
    const without = client({ hostOptions: () => ({ caFiles: [reg.caFile as string] }) });
    await assert.rejects(
      without.c.getManifest(ref),
      (e: unknown) => hasCode(e, "REGISTRY_UNREACHABLE") && e.message.includes(reg.host),
    );
    await without.c.close();
  });

  test("an unreadable CA file is a TLS_CONFIG_INVALID error naming the file", async () => {
    const c = client({ hostOptions: () => ({ caFiles: ["/nonexistent/kiln-ca.pem"] }) });
    await assert.rejects(
      c.c.getManifest(parseReference(`${reg.host}/x:1`)),
      (e: unknown) => hasCode(e, "TLS_CONFIG_INVALID") && e.message.includes("/nonexistent/kiln-ca.pem"),
    );
    // The destination-tag prefetch a build starts without waiting never rejects (an unhandled rejection would
    // end the process before kiln's own error line): the push reports the problem.
    assert.equal(await c.c.prefetchPushState(parseReference(`${reg.host}/x:1`)), 0);
    await c.c.close();
  });
});

describe("token server without OAuth2", () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry({ token: { identityTokens: { "refresh-xyz": USER }, oauth: false } });
  });
  after(async () => reg?.stop());

  test("an identity token falls back to GET when the OAuth2 POST answers 404", async () => {
    const issuer = reg.tokenIssuer;
    assert.ok(issuer);
    const { c } = client({ keychain: staticKeychain({ [reg.host]: { identityToken: "refresh-xyz" } }) });
    const image = testImage([testLayer({ oauth: "fallback" })]);
    assert.equal(await c.pushImage(parseReference(`${reg.host}/nooauth/app:1`), image), image.digest);
    assert.ok(issuer.requests.some((r) => r.method === "GET" && r.account === USER));
    assert.ok(!issuer.requests.some((r) => r.method === "POST"), "404 POSTs are not logged as grants");
    await c.close();
  });
});
