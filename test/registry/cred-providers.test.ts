import * as assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { dockerConfigKeychain } from "../../src/registry/index.js";
import { busyboxOciLayout, pushLayoutToRegistry } from "../support/base-images.js";
import { runKiln } from "../support/kiln-cli.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";
import {
  cloudFreeEnv,
  startAcrFront,
  startFakeAad,
  startFakeEcr,
  startFakeGoogle,
  type FakeEndpoint,
  pushedLayerCount,
} from "./cred-fakes.js";

const ACR_USER = "00000000-0000-0000-0000-000000000000";

// kiln's built-in credential providers answer config.json `credHelpers` names (ecr-login, gcr,
// gcloud, acr-env) the way the helper binaries of kaniko's image do: the cloud token endpoints are
// loopback fakes, the registry is a real docker-registry whose htpasswd accepts only the token the
// provider must obtain. Nothing but config.json `credHelpers` (and the cloud's usual env) is set.
describe("built-in credential providers (ECR, GCR/Artifact Registry, ACR) against a real registry", () => {
  let work: string;
  const stops: (() => Promise<void>)[] = [];

  /** A registry accepting only `user`/`password`, holding busybox; and a context dir building on it. */
  async function setup(
    name: string,
    user: string,
    password: string,
  ): Promise<{ reg: TestRegistry; ctx: string; cfgDir: string }> {
    const reg = await startRegistry({ htpasswd: { username: user, password } });
    stops.push(() => reg.stop());
    await pushLayoutToRegistry(await busyboxOciLayout(), reg.host, "busybox:latest", { username: user, password });
    const ctx = path.join(work, name, "ctx");
    await mkdir(ctx, { recursive: true });
    await writeFile(path.join(ctx, "hello.txt"), `hello ${name}\n`);
    const cfgDir = path.join(work, name, "docker");
    await mkdir(cfgDir, { recursive: true });
    return { reg, ctx, cfgDir };
  }

  async function writeDockerfile(ctx: string, baseHost: string): Promise<void> {
    await writeFile(path.join(ctx, "Dockerfile"), `FROM ${baseHost}/busybox:latest\nCOPY hello.txt /hello.txt\n`);
  }

  /** Env of a kiln run: no inherited cloud or docker settings, a private HOME. */
  function cleanEnv(extra: Record<string, string>): Record<string, string | undefined> {
    return cloudFreeEnv(path.join(work, "home"), extra);
  }

  async function build(ctx: string, dest: string, env: Record<string, string | undefined>, extra: string[] = []) {
    return runKiln(["build", "--context", ctx, "--destination", dest, "--insecure", "--insecure-pull", ...extra], {
      env,
      timeoutMs: 180_000,
    });
  }

  async function assertPushed(dest: string, user: string, password: string): Promise<void> {
    assert.equal(await pushedLayerCount(dest, user, password), 2);
  }

  before(async () => {
    work = await tempDir("cred-providers");
    await mkdir(path.join(work, "home"), { recursive: true });
  });
  after(async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    if (work) await removeDir(work).catch(() => undefined);
  });

  describe("ECR (ecr-login)", () => {
    const password = `ecr-${randomBytes(12).toString("hex")}`;
    const akid = "AKIAKILNTEST00000001";
    let ecr: FakeEndpoint;
    let reg: TestRegistry;
    let ctx: string;
    let cfgDir: string;
    let awsEnv: Record<string, string>;

    before(async () => {
      ecr = await startFakeEcr({ accessKeyId: akid, password });
      stops.push(() => ecr.stop());
      ({ reg, ctx, cfgDir } = await setup("ecr", "AWS", password));
      await writeDockerfile(ctx, reg.host);
      await writeFile(path.join(cfgDir, "config.json"), JSON.stringify({ credHelpers: { [reg.host]: "ecr-login" } }));
      awsEnv = {
        DOCKER_CONFIG: cfgDir,
        AWS_ACCESS_KEY_ID: akid,
        AWS_SECRET_ACCESS_KEY: "kiln-test-secret-key",
        AWS_REGION: "eu-west-1",
        AWS_ENDPOINT_URL_ECR: ecr.url,
        AWS_EC2_METADATA_DISABLED: "true",
        AWS_CONFIG_FILE: path.join(work, "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE: path.join(work, "no-aws-credentials"),
      };
    });

    test("build + push with only credHelpers ecr-login: GetAuthorizationToken's token opens the registry (no secret in debug logs)", async () => {
      const dest = `${reg.host}/team/app:ecr`;
      const r = await build(ctx, dest, cleanEnv(awsEnv), ["--verbosity", "debug"]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(ecr.requests.length >= 1, "the ECR endpoint was called");
      assert.match(String(ecr.requests[0]?.headers.authorization), /^AWS4-HMAC-SHA256 Credential=AKIAKILNTEST/);
      assert.doesNotMatch(r.stdout + r.stderr, new RegExp(password));
      assert.doesNotMatch(r.stdout + r.stderr, /kiln-test-secret-key/);
      await assertPushed(dest, "AWS", password);
    });

    test(":slim (KILN_NO_BUILTIN_CRED_HELPERS) fails with a clear error for the same config", async () => {
      const r = await build(
        ctx,
        `${reg.host}/team/app:slim`,
        cleanEnv({ ...awsEnv, KILN_NO_BUILTIN_CRED_HELPERS: "1" }),
      );
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /docker-credential-ecr-login is not on PATH/);
      assert.match(r.stderr, /:slim/);
    });

    test("an external docker-credential-ecr-login on PATH wins over the built-in provider", async () => {
      const bin = path.join(work, "bin");
      await mkdir(bin, { recursive: true });
      const marker = path.join(work, "external-helper-ran");
      const helper = path.join(bin, "docker-credential-ecr-login");
      await writeFile(
        helper,
        `#!/bin/sh\nread -r url\necho "$url" > ${marker}\nprintf '{"ServerURL":"%s","Username":"AWS","Secret":"%s"}' "$url" "${password}"\n`,
      );
      await chmod(helper, 0o755);
      // No AWS settings at all: only the external helper can answer.
      const env = cleanEnv({ DOCKER_CONFIG: cfgDir, PATH: `${bin}:${process.env.PATH ?? ""}` });
      const r = await build(ctx, `${reg.host}/team/app:external`, env);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await readFile(marker, "utf8")).trim(), reg.host);
    });

    test("a wrong AWS identity fails naming ECR and the region, without secrets", async () => {
      const env = cleanEnv({ ...awsEnv, AWS_ACCESS_KEY_ID: "AKIAWRONGWRONGWRONG1" });
      const r = await build(ctx, `${reg.host}/team/app:denied`, env);
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        /ECR credentials for 127\.0\.0\.1:\d+ \(region eu-west-1\): GetAuthorizationToken answered HTTP 4\d\d /,
        r.stderr,
      );
      assert.doesNotMatch(r.stderr, /kiln-test-secret-key/);
    });
  });

  describe("GCR / Artifact Registry (gcr)", () => {
    const token = `ya29.${randomBytes(16).toString("hex")}`;
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    let google: FakeEndpoint;
    let reg: TestRegistry;
    let ctx: string;
    let cfgDir: string;

    before(async () => {
      google = await startFakeGoogle({
        publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
        accessToken: token,
      });
      stops.push(() => google.stop());
      ({ reg, ctx, cfgDir } = await setup("gcr", "oauth2accesstoken", token));
      await writeDockerfile(ctx, reg.host);
    });

    test("service-account key in GOOGLE_APPLICATION_CREDENTIALS → signed JWT → access token", async () => {
      const sa = path.join(work, "gcr", "sa.json");
      await writeFile(
        sa,
        JSON.stringify({
          type: "service_account",
          project_id: "kiln-test",
          private_key_id: "k1",
          private_key: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
          client_email: "builder@kiln-test.iam.gserviceaccount.com",
          token_uri: `${google.url}/token`,
        }),
      );
      await writeFile(path.join(cfgDir, "config.json"), JSON.stringify({ credHelpers: { [reg.host]: "gcr" } }));
      const dest = `${reg.host}/proj/app:sa`;
      const r = await build(ctx, dest, cleanEnv({ DOCKER_CONFIG: cfgDir, GOOGLE_APPLICATION_CREDENTIALS: sa }));
      assert.equal(r.code, 0, r.stderr);
      assert.ok(google.requests.some((q) => q.path === "/token"));
      assert.doesNotMatch(r.stdout + r.stderr, new RegExp(token.replace(".", "\\.")));
      await assertPushed(dest, "oauth2accesstoken", token);
    });

    test("the metadata server (GCE_METADATA_HOST) when no key file is given", async () => {
      const dir = path.join(work, "gcr", "docker-meta");
      await mkdir(dir, { recursive: true });
      // "gcr", not "gcloud": gcloud's own docker-credential-gcloud may be on this machine's PATH (and would win).
      await writeFile(path.join(dir, "config.json"), JSON.stringify({ credHelpers: { [reg.host]: "gcr" } }));
      const before = google.requests.length;
      const dest = `${reg.host}/proj/app:metadata`;
      const r = await build(ctx, dest, cleanEnv({ DOCKER_CONFIG: dir, GCE_METADATA_HOST: google.host }));
      assert.equal(r.code, 0, r.stderr);
      assert.ok(google.requests.slice(before).some((q) => q.path.startsWith("/computeMetadata/")));
      await assertPushed(dest, "oauth2accesstoken", token);
    });
  });

  describe("ACR (acr-env)", () => {
    const tenant = "72f988bf-0000-4000-8000-00000000kiln";
    const clientId = "11111111-2222-3333-4444-555555555555";
    const aadToken = `aad-${randomBytes(12).toString("hex")}`;
    const refresh = `acr-refresh-${randomBytes(12).toString("hex")}`;
    const secret = `client-secret-${randomBytes(8).toString("hex")}`;
    const federated = `federated-${randomBytes(8).toString("hex")}`;
    let aad: FakeEndpoint;
    let front: FakeEndpoint;
    let ctx: string;
    let cfgDir: string;

    before(async () => {
      aad = await startFakeAad({
        tenant,
        clientId,
        clientSecret: secret,
        federatedToken: federated,
        accessToken: aadToken,
      });
      stops.push(() => aad.stop());
      let reg: TestRegistry;
      ({ reg, ctx, cfgDir } = await setup("acr", ACR_USER, refresh));
      front = await startAcrFront({ target: reg.host, aadToken, refreshToken: refresh });
      stops.push(() => front.stop());
      await writeDockerfile(ctx, front.host);
      await writeFile(path.join(cfgDir, "config.json"), JSON.stringify({ credHelpers: { [front.host]: "acr-env" } }));
    });

    test("client secret → AAD token → /oauth2/exchange refresh token → build + push", async () => {
      const dest = `${front.host}/team/app:acr`;
      const env = cleanEnv({
        DOCKER_CONFIG: cfgDir,
        AZURE_TENANT_ID: tenant,
        AZURE_CLIENT_ID: clientId,
        AZURE_CLIENT_SECRET: secret,
        AZURE_AUTHORITY_HOST: aad.url,
      });
      const r = await build(ctx, dest, env, ["--verbosity", "debug"]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(front.requests.some((q) => q.path === "/oauth2/exchange"));
      for (const s of [secret, aadToken, refresh]) assert.doesNotMatch(r.stdout + r.stderr, new RegExp(s));
      await assertPushed(dest, ACR_USER, refresh);
    });

    test("workload identity (AZURE_FEDERATED_TOKEN_FILE) through the keychain", async () => {
      const tokenFile = path.join(work, "acr", "azure-identity-token");
      await writeFile(tokenFile, `${federated}\n`);
      const keychain = dockerConfigKeychain({
        DOCKER_CONFIG: cfgDir,
        AZURE_TENANT_ID: tenant,
        AZURE_CLIENT_ID: clientId,
        AZURE_FEDERATED_TOKEN_FILE: tokenFile,
        AZURE_AUTHORITY_HOST: aad.url,
        PATH: process.env.PATH,
      });
      assert.deepEqual(await keychain.resolve(front.host, "team/app"), { username: ACR_USER, password: refresh });
    });

    test("--azure-container-registry-config: the service principal from an azure.json → build + push", async () => {
      const cfg = path.join(work, "acr", "azure.json");
      await writeFile(
        cfg,
        JSON.stringify({ cloud: "AzurePublicCloud", tenantId: tenant, aadClientId: clientId, aadClientSecret: secret }),
      );
      const dest = `${front.host}/team/app:acr-config`;
      const env = cleanEnv({ DOCKER_CONFIG: cfgDir, AZURE_AUTHORITY_HOST: aad.url });
      const r = await build(ctx, dest, env, ["--azure-container-registry-config", cfg]);
      assert.equal(r.code, 0, r.stderr);
      for (const s of [secret, aadToken, refresh]) assert.doesNotMatch(r.stdout + r.stderr, new RegExp(s));
      await assertPushed(dest, ACR_USER, refresh);
    });

    test("a wrong client secret fails naming Azure AD and the HTTP status, never the secret", async () => {
      const keychain = dockerConfigKeychain({
        DOCKER_CONFIG: cfgDir,
        AZURE_TENANT_ID: tenant,
        AZURE_CLIENT_ID: clientId,
        AZURE_CLIENT_SECRET: "wrong-secret-value",
        AZURE_AUTHORITY_HOST: aad.url,
        PATH: process.env.PATH,
      });
      await assert.rejects(keychain.resolve(front.host), (e: Error) => {
        assert.match(
          e.message,
          /Azure AD credentials: http:\/\/127\.0\.0\.1:\d+\/.*answered HTTP 401 \(invalid_client\)/,
        );
        assert.doesNotMatch(e.message, /wrong-secret-value/);
        return true;
      });
    });
  });

  test("--credential-helpers rejects an unknown provider with exit code 2", async () => {
    const r = await runKiln(["build", "--context", work, "--no-push", "--credential-helpers", "vault"], {
      env: cleanEnv({}),
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /unknown --credential-helpers value "vault": expected one of env, google, ecr, acr, gitlab/);
  });
});
