import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { dockerConfigKeychain } from "../../src/registry/index.js";
import { busyboxOciLayout, pushLayoutToRegistry } from "../support/base-images.js";
import { runKiln, type RunKilnResult } from "../support/kiln-cli.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";
import { cloudFreeEnv, type FakeEndpoint, pushedLayerCount } from "./cred-fakes.js";
import {
  createIssuer,
  startFakeIamCredentials,
  startFakeImds,
  startFakeSts,
  startFakeTokenUrl,
  type FakeIssuer,
} from "./cred-fakes-google-external.js";

const USER = "oauth2accesstoken";
const AUDIENCE =
  "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/ci/providers/gitlab";
const SERVICE_ACCOUNT = "builder@kiln-test.iam.gserviceaccount.com";
const JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt";

// Workload identity federation the way CI systems set it up: GOOGLE_APPLICATION_CREDENTIALS names an
// "external_account" file, config.json names the `gcr` helper of kaniko's image. The OIDC issuer, STS
// and IAM Credentials are loopback fakes that verify what the real services verify; the registry is a
// real docker-registry behind a token issuer that accepts only the access token kiln must obtain.
describe("Google workload identity federation (external_account) against a real registry", () => {
  let work: string;
  const stops: (() => Promise<void>)[] = [];
  const stsToken = `ya29.sts-${randomBytes(16).toString("hex")}`;
  const saToken = `ya29.sa-${randomBytes(16).toString("hex")}`;
  const runtimeToken = `ghs-runtime-${randomBytes(12).toString("hex")}`;
  let issuer: FakeIssuer;
  let sts: FakeEndpoint;
  let iam: FakeEndpoint;
  let tokenUrl: FakeEndpoint;

  /** A token-auth registry whose only user is `oauth2accesstoken`/`password`, holding busybox; a context building on it. */
  async function setup(name: string, password: string): Promise<{ reg: TestRegistry; ctx: string; cfgDir: string }> {
    const reg = await startRegistry({ token: true, htpasswd: { username: USER, password } });
    stops.push(() => reg.stop());
    await pushLayoutToRegistry(await busyboxOciLayout(), reg.host, "busybox:latest", { username: USER, password });
    const ctx = path.join(work, name, "ctx");
    await mkdir(ctx, { recursive: true });
    await writeFile(path.join(ctx, "hello.txt"), `hello ${name}\n`);
    await writeFile(path.join(ctx, "Dockerfile"), `FROM ${reg.host}/busybox:latest\nCOPY hello.txt /hello.txt\n`);
    const cfgDir = path.join(work, name, "docker");
    await mkdir(cfgDir, { recursive: true });
    await writeFile(path.join(cfgDir, "config.json"), JSON.stringify({ credHelpers: { [reg.host]: "gcr" } }));
    return { reg, ctx, cfgDir };
  }

  /** An external_account file (AIP-4117) with `extra` fields. */
  async function credFile(name: string, extra: Record<string, unknown>): Promise<string> {
    const file = path.join(work, `${name}.json`);
    await writeFile(
      file,
      JSON.stringify({
        type: "external_account",
        audience: AUDIENCE,
        subject_token_type: JWT_TYPE,
        token_url: `${sts.url}/v1/token`,
        ...extra,
      }),
    );
    return file;
  }

  /** Env of a kiln run: no inherited cloud or docker settings, a private HOME. */
  function cleanEnv(extra: Record<string, string>): Record<string, string | undefined> {
    return cloudFreeEnv(path.join(work, "home"), extra);
  }

  function build(ctx: string, dest: string, env: Record<string, string | undefined>): Promise<RunKilnResult> {
    return runKiln(
      ["build", "--context", ctx, "--destination", dest, "--insecure", "--insecure-pull", "--verbosity", "debug"],
      { env, timeoutMs: 180_000 },
    );
  }

  async function assertPushed(dest: string, password: string): Promise<void> {
    assert.equal(await pushedLayerCount(dest, USER, password), 2);
  }

  /** The subject tokens STS received so far. */
  function subjectTokens(ep: FakeEndpoint): string[] {
    return ep.requests.map((q) => new URLSearchParams(q.body).get("subject_token") ?? "").filter((t) => t !== "");
  }

  function assertNoSecrets(r: RunKilnResult, secrets: string[]): void {
    const out = r.stdout + r.stderr;
    for (const s of secrets) assert.ok(s.length > 10 && !out.includes(s), `kiln's output contains a secret`);
  }

  before(async () => {
    work = await tempDir("cred-google-external");
    await mkdir(path.join(work, "home"), { recursive: true });
    issuer = createIssuer();
    sts = await startFakeSts({ audience: AUDIENCE, issuer, accessToken: stsToken });
    stops.push(() => sts.stop());
    iam = await startFakeIamCredentials({ serviceAccount: SERVICE_ACCOUNT, stsToken, accessToken: saToken });
    stops.push(() => iam.stop());
    tokenUrl = await startFakeTokenUrl({ issuer, runtimeToken });
    stops.push(() => tokenUrl.stop());
  });
  after(async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    if (work) await removeDir(work).catch(() => undefined);
  });

  test("file-sourced OIDC token (GitLab id_tokens) → STS exchange → build + push", async () => {
    const { reg, ctx, cfgDir } = await setup("file", stsToken);
    const oidc = path.join(work, "gitlab-oidc-token");
    const idToken = issuer.idToken(AUDIENCE);
    await writeFile(oidc, `${idToken}\n`);
    const creds = await credFile("file-sourced", { credential_source: { file: oidc } });
    const dest = `${reg.host}/proj/app:wif-file`;
    const before = sts.requests.length;
    const r = await build(ctx, dest, cleanEnv({ DOCKER_CONFIG: cfgDir, GOOGLE_APPLICATION_CREDENTIALS: creds }));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(subjectTokens({ ...sts, requests: sts.requests.slice(before) }), [idToken]);
    assert.equal(iam.requests.length, 0, "no impersonation without service_account_impersonation_url");
    assertNoSecrets(r, [idToken, stsToken]);
    await assertPushed(dest, stsToken);
  });

  test("URL-sourced JSON token (GitHub Actions style) + service account impersonation → build + push", async () => {
    const { reg, ctx, cfgDir } = await setup("url", saToken);
    const creds = await credFile("url-sourced", {
      credential_source: {
        url: `${tokenUrl.url}/token?api-version=2.0&audience=${encodeURIComponent(AUDIENCE)}`,
        headers: { Authorization: `bearer ${runtimeToken}` },
        format: { type: "json", subject_token_field_name: "value" },
      },
      service_account_impersonation_url: `${iam.url}/v1/projects/-/serviceAccounts/${SERVICE_ACCOUNT}:generateAccessToken`,
      service_account_impersonation: { token_lifetime_seconds: 900 },
    });
    const dest = `${reg.host}/proj/app:wif-url`;
    const stsBefore = sts.requests.length;
    const r = await build(ctx, dest, cleanEnv({ DOCKER_CONFIG: cfgDir, GOOGLE_APPLICATION_CREDENTIALS: creds }));
    assert.equal(r.code, 0, r.stderr);
    assert.ok(tokenUrl.requests.some((q) => q.method === "GET" && q.path.startsWith("/token?")));
    const subjects = subjectTokens({ ...sts, requests: sts.requests.slice(stsBefore) });
    assert.equal(subjects.length, 1);
    const last = iam.requests.at(-1);
    assert.deepEqual(JSON.parse(last?.body ?? "{}"), {
      scope: ["https://www.googleapis.com/auth/cloud-platform"],
      lifetime: "900s",
    });
    assertNoSecrets(r, [runtimeToken, ...subjects, stsToken, saToken]);
    await assertPushed(dest, saToken);
  });

  test("a token_url on a non-Google host is refused before any request", async () => {
    const { reg, ctx, cfgDir } = await setup("refused", stsToken);
    const creds = await credFile("attacker", {
      token_url: "https://sts.googleapis.com.attacker.example/v1/token",
      credential_source: {
        url: `${tokenUrl.url}/token?audience=${encodeURIComponent(AUDIENCE)}`,
        headers: { Authorization: `bearer ${runtimeToken}` },
        format: { type: "json", subject_token_field_name: "value" },
      },
    });
    const urlBefore = tokenUrl.requests.length;
    const stsBefore = sts.requests.length;
    const r = await build(
      ctx,
      `${reg.host}/proj/app:refused`,
      cleanEnv({ DOCKER_CONFIG: cfgDir, GOOGLE_APPLICATION_CREDENTIALS: creds }),
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /Google credentials: .*attacker\.json: "token_url" names https:\/\/sts\.googleapis\.com\.attacker\.example, which is not a Google STS endpoint/,
    );
    assert.equal(tokenUrl.requests.length, urlBefore, "the subject token was not even fetched");
    assert.equal(sts.requests.length, stsBefore);
    assertNoSecrets(r, [runtimeToken]);
  });

  test("STS answering 400: exit 1, the message names Google STS and the status, no token in any output", async () => {
    const failing = await startFakeSts({ audience: AUDIENCE, issuer, accessToken: stsToken, failWith: 400 });
    stops.push(() => failing.stop());
    const { reg, ctx, cfgDir } = await setup("denied", stsToken);
    const oidc = path.join(work, "denied-oidc-token");
    const idToken = issuer.idToken(AUDIENCE);
    await writeFile(oidc, idToken);
    const creds = await credFile("denied", {
      token_url: `${failing.url}/v1/token`,
      credential_source: { file: oidc },
    });
    const r = await build(
      ctx,
      `${reg.host}/proj/app:denied`,
      cleanEnv({ DOCKER_CONFIG: cfgDir, GOOGLE_APPLICATION_CREDENTIALS: creds }),
    );
    assert.equal(r.code, 1, r.stderr);
    assert.equal(failing.requests.length, 1, "one exchange, no retries of a 400");
    assert.match(
      r.stderr,
      /Google \(STS token exchange\) credentials: http:\/\/127\.0\.0\.1:\d+\/v1\/token answered HTTP 400 \(invalid_grant\)/,
    );
    assert.match(
      r.stderr,
      /\(audience \/\/iam\.googleapis\.com\/projects\/123456789012\/.*from the file .*denied-oidc-token;/,
    );
    assertNoSecrets(r, [idToken, stsToken, saToken]);
  });

  test("executable source (GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1) through the keychain", async () => {
    const idToken = issuer.idToken(AUDIENCE);
    const exe = path.join(work, "get-oidc-token");
    await writeFile(
      exe,
      `#!/bin/sh\n[ "$GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE" = "${AUDIENCE}" ] || exit 7\nprintf '{"version":1,"success":true,"token_type":"urn:ietf:params:oauth:token-type:jwt","id_token":"%s"}' "${idToken}"\n`,
    );
    await chmod(exe, 0o755);
    const creds = await credFile("executable", { credential_source: { executable: { command: exe } } });
    const cfgDir = path.join(work, "exe-docker");
    await mkdir(cfgDir, { recursive: true });
    await writeFile(
      path.join(cfgDir, "config.json"),
      JSON.stringify({ credHelpers: { "europe-docker.pkg.dev": "gcr" } }),
    );
    const env = {
      DOCKER_CONFIG: cfgDir,
      GOOGLE_APPLICATION_CREDENTIALS: creds,
      PATH: process.env.PATH,
    };
    await assert.rejects(
      dockerConfigKeychain(env).resolve("europe-docker.pkg.dev"),
      /GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1/,
    );
    const before = sts.requests.length;
    const keychain = dockerConfigKeychain({ ...env, GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES: "1" });
    assert.deepEqual(await keychain.resolve("europe-docker.pkg.dev", "proj/repo"), {
      username: USER,
      password: stsToken,
    });
    assert.deepEqual(subjectTokens({ ...sts, requests: sts.requests.slice(before) }), [idToken]);
  });

  test("impersonation refused by IAM: the message names the step, the endpoint and Google's status", async () => {
    const oidc = path.join(work, "imp-oidc-token");
    const idToken = issuer.idToken(AUDIENCE);
    await writeFile(oidc, idToken);
    const creds = await credFile("impersonation-denied", {
      credential_source: { file: oidc },
      service_account_impersonation_url: `${iam.url}/v1/projects/-/serviceAccounts/other@kiln-test.iam.gserviceaccount.com:generateAccessToken`,
    });
    const keychain = dockerConfigKeychain({
      DOCKER_CONFIG: path.join(work, "no-docker-config"),
      GOOGLE_APPLICATION_CREDENTIALS: creds,
      PATH: process.env.PATH,
    });
    await assert.rejects(keychain.resolve("us-docker.pkg.dev"), (e: Error) => {
      assert.match(
        e.message,
        /^Google \(service account impersonation\) credentials: http:\/\/127\.0\.0\.1:\d+\/v1\/projects\/-\/serviceAccounts\/other@kiln-test\.iam\.gserviceaccount\.com:generateAccessToken answered HTTP 404 \(NOT_FOUND\)/,
      );
      for (const s of [idToken, stsToken, saToken]) assert.ok(!e.message.includes(s));
      return true;
    });
  });

  describe("AWS source (environment_id aws1)", () => {
    const AWS_TYPE = "urn:ietf:params:aws:token-type:aws4_request";
    const awsAudience =
      "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/aws/providers/ec2";
    const secretKey = `aws-secret-${randomBytes(12).toString("hex")}`;
    const sessionToken = `aws-session-${randomBytes(12).toString("hex")}`;
    const accessKeyId = "ASIAKILNTEST00000001";
    let awsSts: FakeEndpoint;
    let imds: FakeEndpoint;
    let cfgDir: string;

    before(async () => {
      awsSts = await startFakeSts({
        audience: awsAudience,
        subjectTokenType: AWS_TYPE,
        aws: { accessKeyId, secretAccessKey: secretKey, region: "eu-west-1" },
        accessToken: stsToken,
      });
      stops.push(() => awsSts.stop());
      imds = await startFakeImds({
        availabilityZone: "eu-west-1b",
        role: "kiln-ci",
        credentials: { accessKeyId, secretAccessKey: secretKey, sessionToken },
      });
      stops.push(() => imds.stop());
      cfgDir = path.join(work, "aws-docker");
      await mkdir(cfgDir, { recursive: true });
      await writeFile(path.join(cfgDir, "config.json"), JSON.stringify({ credsStore: "gcr" }));
    });

    async function awsCreds(name: string, metadata: boolean): Promise<string> {
      return credFile(name, {
        audience: awsAudience,
        subject_token_type: AWS_TYPE,
        token_url: `${awsSts.url}/v1/token`,
        credential_source: {
          environment_id: "aws1",
          regional_cred_verification_url:
            "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
          ...(metadata
            ? {
                region_url: `${imds.url}/latest/meta-data/placement/availability-zone`,
                url: `${imds.url}/latest/meta-data/iam/security-credentials`,
                imdsv2_session_token_url: `${imds.url}/latest/api/token`,
              }
            : {}),
        },
      });
    }

    test("EC2 instance metadata (IMDSv2): region + role credentials → signed GetCallerIdentity → STS token", async () => {
      const creds = await awsCreds("aws-imds", true);
      const keychain = dockerConfigKeychain({
        DOCKER_CONFIG: cfgDir,
        GOOGLE_APPLICATION_CREDENTIALS: creds,
        PATH: process.env.PATH,
      });
      assert.deepEqual(await keychain.resolve("europe-docker.pkg.dev", "p/r"), { username: USER, password: stsToken });
      assert.equal(imds.requests[0]?.method, "PUT", "the IMDSv2 session token comes first");
      assert.ok(imds.requests.slice(1).every((q) => typeof q.headers["x-aws-ec2-metadata-token"] === "string"));
      assert.ok(imds.requests.some((q) => q.path === "/latest/meta-data/iam/security-credentials/kiln-ci"));
      const subject = new URLSearchParams(awsSts.requests.at(-1)?.body ?? "").get("subject_token") ?? "";
      const signed = JSON.parse(decodeURIComponent(subject)) as {
        url: string;
        headers: { key: string; value: string }[];
      };
      assert.equal(signed.url, "https://sts.eu-west-1.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15");
      assert.deepEqual(
        signed.headers.map((h) => h.key),
        ["authorization", "host", "x-amz-date", "x-amz-security-token", "x-goog-cloud-target-resource"],
      );
    });

    test("AWS_* environment credentials and AWS_REGION: no metadata requests", async () => {
      const creds = await awsCreds("aws-env", false);
      const before = imds.requests.length;
      const keychain = dockerConfigKeychain({
        DOCKER_CONFIG: cfgDir,
        GOOGLE_APPLICATION_CREDENTIALS: creds,
        AWS_ACCESS_KEY_ID: accessKeyId,
        AWS_SECRET_ACCESS_KEY: secretKey,
        AWS_REGION: "eu-west-1",
        PATH: process.env.PATH,
      });
      assert.deepEqual(await keychain.resolve("gcr.io", "p/r"), { username: USER, password: stsToken });
      assert.equal(imds.requests.length, before);
    });

    test("a wrong AWS secret: STS refuses, the error names the step and never the keys", async () => {
      const creds = await awsCreds("aws-wrong", false);
      const keychain = dockerConfigKeychain({
        DOCKER_CONFIG: cfgDir,
        GOOGLE_APPLICATION_CREDENTIALS: creds,
        AWS_ACCESS_KEY_ID: accessKeyId,
        AWS_SECRET_ACCESS_KEY: "wrong-aws-secret-value",
        AWS_SESSION_TOKEN: sessionToken,
        AWS_REGION: "eu-west-1",
        PATH: process.env.PATH,
      });
      await assert.rejects(keychain.resolve("gcr.io"), (e: Error) => {
        assert.match(
          e.message,
          /Google \(STS token exchange\) credentials: .* answered HTTP 400 \(invalid_grant\);.*from a signed AWS GetCallerIdentity request;/,
        );
        for (const s of ["wrong-aws-secret-value", sessionToken, stsToken]) assert.ok(!e.message.includes(s));
        return true;
      });
    });
  });
});
