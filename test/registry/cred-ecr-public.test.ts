import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { dockerConfigKeychain } from "../../src/registry/index.js";
import { busyboxOciLayout, pushLayoutToRegistry } from "../support/base-images.js";
import { runKiln } from "../support/kiln-cli.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";
import {
  startFakeEcrPublic,
  startPublicEcrFront,
  type FakeEcrPublic,
  type PublicEcrFront,
} from "./cred-fakes-ecr-public.js";
import { cloudFreeEnv, pushedLayerCount } from "./cred-fakes.js";

// ECR Public (`public.ecr.aws`) through kiln's built-in ecr-login provider, end to end: kiln's CLI
// pushes to `public.ecr.aws/...` — reached through an HTTPS proxy that tunnels only that name to a
// TLS front of a real docker-registry (token auth like the real service: anonymous pulls, pushes
// only for user AWS with the password the fake ECR Public API hands out). The fake checks the full
// SigV4 signature (service ecr-public, region us-east-1) and the JSON target. Nothing leaves loopback.
describe("ECR Public (public.ecr.aws) credentials against a real registry", () => {
  const password = `ecrpub-${randomBytes(12).toString("hex")}`;
  const akid = "AKIAKILNPUBLIC000001";
  const secret = `kiln-public-secret-${randomBytes(8).toString("hex")}`;
  const sessionToken = `kiln-session-${randomBytes(16).toString("hex")}`;
  let work: string;
  let reg: TestRegistry;
  let api: FakeEcrPublic;
  let front: PublicEcrFront;
  let ctx: string;
  let scratchCtx: string;
  let helperCfg: string;
  let emptyCfg: string;

  before(async () => {
    work = await tempDir("cred-ecr-public");
    await mkdir(path.join(work, "home"), { recursive: true });
    api = await startFakeEcrPublic({ accessKeyId: akid, secretAccessKey: secret, sessionToken, password });
    reg = await startRegistry({ token: { service: "public.ecr.aws" }, htpasswd: { username: "AWS", password } });
    await pushLayoutToRegistry(await busyboxOciLayout(), reg.host, "docker/library/busybox:latest", {
      username: "AWS",
      password,
    });
    await mkdir(path.join(work, "front"), { recursive: true });
    front = await startPublicEcrFront({ target: reg.host, dir: path.join(work, "front") });

    ctx = path.join(work, "ctx");
    await mkdir(ctx, { recursive: true });
    await writeFile(path.join(ctx, "hello.txt"), "hello ecr public\n");
    await writeFile(
      path.join(ctx, "Dockerfile"),
      "FROM public.ecr.aws/docker/library/busybox:latest\nCOPY hello.txt /hello.txt\n",
    );
    scratchCtx = path.join(work, "scratch-ctx");
    await mkdir(scratchCtx, { recursive: true });
    await writeFile(path.join(scratchCtx, "hello.txt"), "hello\n");
    await writeFile(path.join(scratchCtx, "Dockerfile"), "FROM scratch\nCOPY hello.txt /hello.txt\n");

    helperCfg = path.join(work, "docker-helper");
    await mkdir(helperCfg, { recursive: true });
    await writeFile(
      path.join(helperCfg, "config.json"),
      JSON.stringify({ credHelpers: { "public.ecr.aws": "ecr-login" } }),
    );
    emptyCfg = path.join(work, "docker-empty");
    await mkdir(emptyCfg, { recursive: true });
  });
  after(async () => {
    for (const s of [front, api, reg]) await s?.stop().catch(() => undefined);
    if (work) await removeDir(work).catch(() => undefined);
  });

  /** Env of a kiln run: no inherited cloud/docker/proxy settings; public.ecr.aws only via the test proxy. */
  function cleanEnv(extra: Record<string, string>): Record<string, string | undefined> {
    const env = cloudFreeEnv(path.join(work, "home"), {});
    return {
      ...env,
      HTTPS_PROXY: front.proxyUrl,
      HTTP_PROXY: front.proxyUrl,
      NO_PROXY: "127.0.0.1,localhost",
      SSL_CERT_FILE: front.caFile,
      AWS_EC2_METADATA_DISABLED: "true",
      AWS_CONFIG_FILE: path.join(work, "no-aws-config"),
      AWS_SHARED_CREDENTIALS_FILE: path.join(work, "no-aws-credentials"),
      ...extra,
    };
  }

  /** The AWS identity the fake accepts; AWS_REGION elsewhere proves ECR Public's us-east-1 is used anyway. */
  function awsEnv(over: Record<string, string> = {}): Record<string, string> {
    return {
      AWS_ACCESS_KEY_ID: akid,
      AWS_SECRET_ACCESS_KEY: secret,
      AWS_SESSION_TOKEN: sessionToken,
      AWS_REGION: "eu-west-1",
      AWS_ENDPOINT_URL_ECR_PUBLIC: api.url,
      ...over,
    };
  }

  async function build(dir: string, env: Record<string, string | undefined>, extra: string[]) {
    return runKiln(["build", "--context", dir, ...extra], { env, timeoutMs: 180_000 });
  }

  async function assertPushed(repoTag: string): Promise<void> {
    assert.equal(await pushedLayerCount(`${reg.host}/${repoTag}`, "AWS", password), 2);
  }

  function assertNoSecrets(text: string): void {
    for (const s of [password, secret, sessionToken, Buffer.from(`AWS:${password}`).toString("base64")]) {
      assert.ok(!text.includes(s), "a secret appears in kiln's output");
    }
  }

  test("credHelpers ecr-login: the ECR Public token (SigV4 ecr-public/us-east-1) opens public.ecr.aws for a build + push", async () => {
    const before = api.requests.length;
    const r = await build(ctx, cleanEnv({ DOCKER_CONFIG: helperCfg, ...awsEnv() }), [
      "--destination",
      "public.ecr.aws/kiln-test/app:helper",
      "--verbosity",
      "debug",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const calls = api.requests.slice(before);
    assert.equal(calls.length, 1, "one GetAuthorizationToken per build");
    assert.match(
      String(calls[0]?.headers.authorization),
      /^AWS4-HMAC-SHA256 Credential=AKIAKILNPUBLIC000001\/\d{8}\/us-east-1\/ecr-public\/aws4_request,/,
    );
    assert.equal(calls[0]?.headers["x-amz-target"], "SpencerFrontendService.GetAuthorizationToken");
    assertNoSecrets(r.stdout + r.stderr);
    assert.deepEqual([...new Set(front.connects)], ["public.ecr.aws:443"], "only public.ecr.aws was tunnelled");
    assert.ok(front.requests.some((q) => q.method === "PUT" && q.path.includes("/kiln-test/app/manifests/helper")));
    await assertPushed("kiln-test/app:helper");
  });

  test("no config.json at all: the automatic lookup gets the same token (kaniko's in-process ecr-login keychain)", async () => {
    const before = api.requests.length;
    const r = await build(ctx, cleanEnv({ DOCKER_CONFIG: emptyCfg, ...awsEnv() }), [
      "--destination",
      "public.ecr.aws/kiln-test/app:auto",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(api.requests.length - before, 1);
    await assertPushed("kiln-test/app:auto");
  });

  test("no AWS identity at all: a public image is pulled anonymously, ECR Public is never asked", async () => {
    const before = api.requests.length;
    const issued = reg.tokenIssuer?.requests.length ?? 0;
    // credHelpers names ecr-login for the host, as a shared config would; still no failure.
    const env = cleanEnv({ DOCKER_CONFIG: helperCfg, AWS_ENDPOINT_URL_ECR_PUBLIC: api.url });
    const r = await build(ctx, env, ["--no-push", "--tar-path", path.join(work, "anon.tar")]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(api.requests.length, before, "no GetAuthorizationToken without an identity");
    const tokens = reg.tokenIssuer?.requests.slice(issued) ?? [];
    assert.ok(tokens.length > 0 && tokens.every((t) => t.account === ""), "anonymous pull tokens only");
  });

  test("no AWS identity: a push fails with the push-permission message (401), naming the repository", async () => {
    const env = cleanEnv({ DOCKER_CONFIG: helperCfg, AWS_ENDPOINT_URL_ECR_PUBLIC: api.url });
    const r = await build(scratchCtx, env, ["--destination", "public.ecr.aws/kiln-test/app:anon"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /error checking push permissions -- make sure you entered the correct tag name, and that you are authenticated correctly/,
    );
    assert.match(r.stderr, /public\.ecr\.aws\/kiln-test\/app/);
  });

  test("a refused identity with credHelpers ecr-login fails naming ECR Public, us-east-1 and the status, without secrets", async () => {
    const env = cleanEnv({ DOCKER_CONFIG: helperCfg, ...awsEnv({ AWS_SECRET_ACCESS_KEY: `wrong-${secret}` }) });
    const r = await build(scratchCtx, env, [
      "--destination",
      "public.ecr.aws/kiln-test/app:denied",
      "--verbosity",
      "debug",
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /ECR Public credentials for public\.ecr\.aws \(region us-east-1\): GetAuthorizationToken answered HTTP 400 InvalidSignatureException/,
    );
    assert.match(r.stderr, /ecr-public:GetAuthorizationToken/);
    // The fake, like AWS, quoted the canonical request (with the session token) in its answer.
    assertNoSecrets(r.stdout + r.stderr);
    assert.ok(!(r.stdout + r.stderr).includes("Canonical String"));
  });

  describe("through the library's keychain", () => {
    function keychainEnv(cfgDir: string, over: Record<string, string> = {}): Record<string, string | undefined> {
      return {
        DOCKER_CONFIG: cfgDir,
        HOME: path.join(work, "home"),
        PATH: process.env.PATH,
        AWS_EC2_METADATA_DISABLED: "true",
        ...awsEnv(over),
      };
    }

    test("credHelpers ecr-login → AWS / the issued password", async () => {
      const kc = dockerConfigKeychain(keychainEnv(helperCfg));
      assert.deepEqual(await kc.resolve("public.ecr.aws", "kiln-test/app"), { username: "AWS", password });
    });

    test("an unknown access key with credHelpers: the error names the status and AWS's code, never a secret", async () => {
      const kc = dockerConfigKeychain(keychainEnv(helperCfg, { AWS_ACCESS_KEY_ID: "AKIAWRONGWRONGWRONG1" }));
      await assert.rejects(kc.resolve("public.ecr.aws"), (e: Error) => {
        assert.match(
          e.message,
          /^ECR Public credentials for public\.ecr\.aws \(region us-east-1\): GetAuthorizationToken answered HTTP 400 UnrecognizedClientException: The security token included in the request is invalid\./,
        );
        assertNoSecrets(`${e.message} ${String(e.cause)}`);
        return true;
      });
    });

    test("a refused identity in the automatic lookup or a credsStore leaves public.ecr.aws anonymous (ecr-login)", async () => {
      const before = api.requests.length;
      const auto = dockerConfigKeychain(keychainEnv(emptyCfg, { AWS_ACCESS_KEY_ID: "AKIAWRONGWRONGWRONG1" }));
      assert.equal(await auto.resolve("public.ecr.aws"), undefined);
      const storeCfg = path.join(work, "docker-store");
      await mkdir(storeCfg, { recursive: true });
      await writeFile(path.join(storeCfg, "config.json"), JSON.stringify({ credsStore: "ecr-login" }));
      const store = dockerConfigKeychain(keychainEnv(storeCfg, { AWS_SECRET_ACCESS_KEY: "not-the-secret" }));
      assert.equal(await store.resolve("public.ecr.aws"), undefined);
      // credsStore: the helper is asked first, then the automatic lookup; both are refused.
      assert.ok(api.requests.length - before >= 2, "ECR Public was asked in both cases");
    });
  });
});
