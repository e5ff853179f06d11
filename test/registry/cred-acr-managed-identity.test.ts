import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { hasCode } from "../../src/common/errors.js";
import { armResource } from "../../src/registry/cred-providers/acr-managed-identity.js";
import { credentialSources } from "../../src/registry/cred-providers/index.js";
import { dockerConfigKeychain } from "../../src/registry/index.js";
import { busyboxOciLayout, pushLayoutToRegistry } from "../support/base-images.js";
import { runKiln } from "../support/kiln-cli.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";
import { cloudFreeEnv, startAcrFront, type FakeEndpoint, pushedLayerCount } from "./cred-fakes.js";
import {
  startFakeAppServiceIdentity,
  startFakeImds,
  startForeignMetadataServer,
  startSilentListener,
} from "./cred-fakes-azure-mi.js";

const ACR_USER = "00000000-0000-0000-0000-000000000000";

/** A loopback port nothing listens on (connections are refused). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

test("the managed-identity token is asked for the ARM audience of the registry's cloud", () => {
  assert.equal(armResource("myreg.azurecr.io"), "https://management.azure.com/");
  assert.equal(armResource("myreg.azurecr.cn"), "https://management.chinacloudapi.cn/");
  assert.equal(armResource("myreg.azurecr.us:443"), "https://management.usgovcloudapi.net/");
  assert.equal(armResource("acr-proxy.internal"), "https://management.azure.com/");
});

// ACR through Azure managed identity, as docker-credential-acr-env (kaniko image's `acr-env`) falls
// back to it: no client secret and no federated token file, the ARM token comes from IMDS (Azure
// VMs, scale sets, AKS nodes) or the App Service / Container Apps identity endpoint, and is
// exchanged at the registry's /oauth2/exchange. The identity endpoints are loopback fakes that
// check what Azure checks; the registry is a real docker-registry behind an ACR front whose
// htpasswd accepts only the refresh token the exchange issues for the managed identity's token.
describe("ACR with Azure managed identity (IMDS, App Service) against a real registry", () => {
  const systemId = "aaaaaaaa-0000-4000-8000-000000000001";
  const userAssignedId = "bbbbbbbb-0000-4000-8000-000000000002";
  const userAssignedResourceId =
    "/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/MC_rg_aks_westeurope/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aks-agentpool";
  const miToken = `mi-${randomBytes(12).toString("hex")}`;
  const refresh = `acr-refresh-mi-${randomBytes(12).toString("hex")}`;
  const identityHeader = `idh-${randomBytes(12).toString("hex")}`;
  const secrets = [miToken, refresh, identityHeader];
  const stops: (() => Promise<void>)[] = [];
  let work: string;
  let reg: TestRegistry;
  let front: FakeEndpoint;
  let imds: FakeEndpoint;
  let appService: FakeEndpoint;
  let ctx: string;
  let cfgDir: string;
  let refused: string;

  /** Env of a kiln run: no inherited cloud or docker settings, a private HOME. */
  function cleanEnv(extra: Record<string, string>): Record<string, string | undefined> {
    return cloudFreeEnv(path.join(work, "home"), extra);
  }

  async function build(dest: string, env: Record<string, string | undefined>, extra: string[] = []) {
    return runKiln(["build", "--context", ctx, "--destination", dest, "--insecure", "--insecure-pull", ...extra], {
      env,
      timeoutMs: 180_000,
    });
  }

  async function assertPushed(dest: string): Promise<void> {
    assert.equal(await pushedLayerCount(dest, ACR_USER, refresh), 2);
  }

  function assertNoSecrets(output: string): void {
    for (const s of secrets) assert.ok(!output.includes(s), "a token or the identity header leaked into the output");
  }

  /** The /oauth2/exchange requests the ACR front received since `from`, as forms. */
  function exchanges(from: number): URLSearchParams[] {
    return front.requests
      .slice(from)
      .filter((q) => q.path === "/oauth2/exchange")
      .map((q) => new URLSearchParams(q.body));
  }

  before(async () => {
    work = await tempDir("cred-acr-mi");
    await mkdir(path.join(work, "home"), { recursive: true });
    reg = await startRegistry({ htpasswd: { username: ACR_USER, password: refresh } });
    stops.push(() => reg.stop());
    await pushLayoutToRegistry(await busyboxOciLayout(), reg.host, "busybox:latest", {
      username: ACR_USER,
      password: refresh,
    });
    front = await startAcrFront({ target: reg.host, aadToken: miToken, refreshToken: refresh });
    stops.push(() => front.stop());
    imds = await startFakeImds({
      accessToken: miToken,
      systemClientId: systemId,
      userAssigned: [userAssignedId, userAssignedResourceId],
    });
    stops.push(() => imds.stop());
    appService = await startFakeAppServiceIdentity({ identityHeader, accessToken: miToken, systemClientId: systemId });
    stops.push(() => appService.stop());
    refused = `http://127.0.0.1:${await closedPort()}`;
    ctx = path.join(work, "ctx");
    await mkdir(ctx, { recursive: true });
    await writeFile(path.join(ctx, "hello.txt"), "hello managed identity\n");
    await writeFile(path.join(ctx, "Dockerfile"), `FROM ${front.host}/busybox:latest\nCOPY hello.txt /hello.txt\n`);
    cfgDir = path.join(work, "docker");
    await mkdir(cfgDir, { recursive: true });
    await writeFile(path.join(cfgDir, "config.json"), JSON.stringify({ credHelpers: { [front.host]: "acr-env" } }));
  });
  after(async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    if (work) await removeDir(work).catch(() => undefined);
  });

  test("IMDS (system-assigned) → ARM token → /oauth2/exchange → build + push; no secret in debug output", async () => {
    const before = { imds: imds.requests.length, front: front.requests.length };
    const dest = `${front.host}/team/app:imds`;
    const r = await build(dest, cleanEnv({ DOCKER_CONFIG: cfgDir, AZURE_POD_IDENTITY_AUTHORITY_HOST: imds.url }), [
      "--verbosity",
      "debug",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const asked = imds.requests.slice(before.imds);
    assert.ok(asked.length >= 1, "IMDS was asked");
    for (const q of asked) {
      const u = new URL(q.path, imds.url);
      assert.equal(q.headers.metadata, "true");
      assert.equal(u.searchParams.get("api-version"), "2018-02-01");
      assert.equal(u.searchParams.get("resource"), "https://management.azure.com/");
      assert.equal(u.searchParams.get("client_id"), null, "system-assigned: no client_id");
    }
    const forms = exchanges(before.front);
    assert.ok(forms.length >= 1, "the token was exchanged");
    for (const f of forms) {
      assert.equal(f.get("service"), front.host);
      assert.equal(f.get("access_token"), miToken);
      assert.equal(f.get("tenant"), null, "no tenant is known for a managed identity");
    }
    assertNoSecrets(r.stdout + r.stderr);
    await assertPushed(dest);
  });

  test("IMDS with a user-assigned identity chosen by AZURE_CLIENT_ID (client_id=), through the keychain", async () => {
    const before = imds.requests.length;
    const keychain = dockerConfigKeychain({
      DOCKER_CONFIG: cfgDir,
      AZURE_CLIENT_ID: userAssignedId,
      AZURE_POD_IDENTITY_AUTHORITY_HOST: `${imds.url}/`,
      PATH: process.env.PATH,
    });
    assert.deepEqual(await keychain.resolve(front.host, "team/app"), { username: ACR_USER, password: refresh });
    const asked = imds.requests.slice(before);
    assert.equal(asked.length, 1);
    assert.equal(new URL(asked[0]?.path ?? "", imds.url).searchParams.get("client_id"), userAssignedId);
  });

  test("AKS azure.json with useManagedIdentityExtension: the kubelet identity (client ID or resource ID), never the 'msi' placeholders", async () => {
    const cases: [string, string, string][] = [
      [userAssignedId, "client_id", "azure-client-id.json"],
      [userAssignedResourceId, "msi_res_id", "azure-resource-id.json"],
    ];
    for (const [identity, param, name] of cases) {
      const cfg = path.join(work, name);
      await writeFile(
        cfg,
        JSON.stringify({
          cloud: "AzurePublicCloud",
          tenantId: "72f988bf-0000-4000-8000-000000000000",
          aadClientId: "msi",
          aadClientSecret: "msi",
          useManagedIdentityExtension: true,
          userAssignedIdentityID: identity,
        }),
      );
      const before = { imds: imds.requests.length, front: front.requests.length };
      const keychain = dockerConfigKeychain({
        DOCKER_CONFIG: cfgDir,
        AZURE_CONTAINER_REGISTRY_CONFIG: cfg,
        AZURE_POD_IDENTITY_AUTHORITY_HOST: imds.url,
        // Were the "msi" placeholders used as a client secret, Azure AD would be asked here (refused).
        AZURE_AUTHORITY_HOST: refused,
        PATH: process.env.PATH,
      });
      assert.deepEqual(await keychain.resolve(front.host, "team/app"), { username: ACR_USER, password: refresh });
      const asked = imds.requests.slice(before.imds);
      assert.equal(asked.length, 1);
      assert.equal(new URL(asked[0]?.path ?? "", imds.url).searchParams.get(param), identity);
      assert.deepEqual(
        exchanges(before.front).map((f) => f.get("tenant")),
        ["72f988bf-0000-4000-8000-000000000000"],
      );
    }
  });

  test("App Service / Container Apps endpoint (IDENTITY_ENDPOINT + X-IDENTITY-HEADER) → build + push", async () => {
    const before = appService.requests.length;
    const dest = `${front.host}/team/app:appservice`;
    const r = await build(
      dest,
      cleanEnv({
        DOCKER_CONFIG: cfgDir,
        IDENTITY_ENDPOINT: `${appService.url}/msi/token`,
        IDENTITY_HEADER: identityHeader,
        // App Service wins over IMDS, which here refuses connections.
        AZURE_POD_IDENTITY_AUTHORITY_HOST: refused,
      }),
      ["--verbosity", "debug"],
    );
    assert.equal(r.code, 0, r.stderr);
    const asked = appService.requests.slice(before);
    assert.ok(asked.length >= 1, "the App Service endpoint was asked");
    for (const q of asked) {
      assert.equal(q.headers["x-identity-header"], identityHeader);
      assert.equal(new URL(q.path, appService.url).searchParams.get("api-version"), "2019-08-01");
    }
    assertNoSecrets(r.stdout + r.stderr);
    await assertPushed(dest);
  });

  test("no Azure identity and an IMDS that refuses connections: fails at once with the ACR 'what to set' message", async () => {
    const r = await build(
      `${front.host}/team/app:none`,
      cleanEnv({ DOCKER_CONFIG: cfgDir, AZURE_POD_IDENTITY_AUTHORITY_HOST: refused }),
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /credential helper "acr-env" for 127\.0\.0\.1:\d+, but the built-in acr provider found no identity: set AZURE_CLIENT_ID and AZURE_TENANT_ID with AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE, or run on Azure with a managed identity/,
    );
    // The unreachable IMDS counted as "not on Azure" at once: no timeout, no retry loop.
    assert.doesNotMatch(r.stderr, /timeout|timed out|aborted/i);
  });

  test("a hung IMDS (accepts, never answers) counts as absent after the provider timeout, not the build's", async () => {
    const silent = await startSilentListener();
    try {
      const sources = credentialSources(
        { PATH: "", AZURE_POD_IDENTITY_AUTHORITY_HOST: silent.url },
        { timeoutMs: 300 },
      );
      await assert.rejects(sources.helper("acr-env", "myreg.azurecr.io", "myreg.azurecr.io"), (e: Error) => {
        assert.ok(hasCode(e, "CREDENTIAL_HELPER_FAILED"), e.message);
        assert.match(e.message, /found no identity: .*managed identity/);
        return true;
      });
    } finally {
      await silent.stop();
    }
  });

  test("the automatic lookup (no config.json) stays anonymous off Azure: IMDS refused, or another cloud's metadata server, or a VM without an identity (400)", async () => {
    assert.equal(
      await credentialSources({ PATH: "", AZURE_POD_IDENTITY_AUTHORITY_HOST: refused }).auto("myreg.azurecr.io"),
      undefined,
    );
    // IMDS answers 400 for an identity the VM does not have: a public repository stays pullable.
    assert.equal(
      await credentialSources({
        PATH: "",
        AZURE_CLIENT_ID: "cccccccc-0000-4000-8000-00000000dead",
        AZURE_POD_IDENTITY_AUTHORITY_HOST: imds.url,
      }).auto("myreg.azurecr.io"),
      undefined,
    );
    const foreign = await startForeignMetadataServer();
    try {
      assert.equal(
        await credentialSources({ PATH: "", AZURE_POD_IDENTITY_AUTHORITY_HOST: foreign.url }).auto("myreg.azurecr.io"),
        undefined,
      );
      assert.equal(foreign.requests.length, 1);
    } finally {
      await foreign.stop();
    }
  });

  test("IMDS answers 400 (identity not assigned): the error names Azure managed identity, IMDS's host and the status", async () => {
    const r = await build(
      `${front.host}/team/app:denied`,
      cleanEnv({
        DOCKER_CONFIG: cfgDir,
        AZURE_CLIENT_ID: "cccccccc-0000-4000-8000-00000000dead",
        AZURE_POD_IDENTITY_AUTHORITY_HOST: imds.url,
      }),
      ["--verbosity", "debug"],
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `ACR credentials for ${front.host.replace(/\./g, "\\.")}: Azure managed identity \\(IMDS ${imds.host.replace(/\./g, "\\.")}\\) answered HTTP 400 \\(invalid_request\\); assign a managed identity`,
      ),
    );
    assertNoSecrets(r.stdout + r.stderr);
  });

  test("IMDS throttling (429 Retry-After) and a 500 are retried; three 503s in a row are reported with the status", async () => {
    const flaky = await startFakeImds({
      accessToken: miToken,
      systemClientId: systemId,
      transient: [{ status: 429, retryAfter: "0" }, { status: 500 }],
    });
    const down = await startFakeImds({
      accessToken: miToken,
      systemClientId: systemId,
      transient: [{ status: 503 }, { status: 503 }, { status: 503 }],
    });
    try {
      const keychain = (imdsUrl: string): ReturnType<typeof dockerConfigKeychain> =>
        dockerConfigKeychain({ DOCKER_CONFIG: cfgDir, AZURE_POD_IDENTITY_AUTHORITY_HOST: imdsUrl, PATH: "" });
      assert.deepEqual(await keychain(flaky.url).resolve(front.host), { username: ACR_USER, password: refresh });
      assert.equal(flaky.requests.length, 3, "429, 500, then the token");
      await assert.rejects(keychain(down.url).resolve(front.host), (e: Error) => {
        assert.match(
          e.message,
          /Azure managed identity \(IMDS 127\.0\.0\.1:\d+\) answered HTTP 503 \(temporarily_unavailable\) 3 times; /,
        );
        return true;
      });
      assert.equal(down.requests.length, 3, "three requests, then the error");
    } finally {
      await flaky.stop();
      await down.stop();
    }
  });

  test("a wrong IDENTITY_HEADER: the App Service endpoint's 401 is reported without the header's value", async () => {
    const wrong = `wrong-identity-header-${randomBytes(6).toString("hex")}`;
    const keychain = dockerConfigKeychain({
      DOCKER_CONFIG: cfgDir,
      IDENTITY_ENDPOINT: `${appService.url}/msi/token`,
      IDENTITY_HEADER: wrong,
      PATH: process.env.PATH,
    });
    await assert.rejects(keychain.resolve(front.host), (e: Error) => {
      assert.match(
        e.message,
        /Azure managed identity \(App Service identity endpoint 127\.0\.0\.1:\d+\) answered HTTP 401 \(unauthorized_client\)/,
      );
      assert.ok(!e.message.includes(wrong));
      return true;
    });
  });
});
