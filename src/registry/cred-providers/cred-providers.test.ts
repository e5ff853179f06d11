import * as assert from "node:assert/strict";
import { generateKeyPairSync, verify } from "node:crypto";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { hasCode } from "../../common/errors.js";
import {
  builtinForHelperName,
  credentialSources,
  envCredentialPrefixes,
  isAzureRegistry,
  isGoogleRegistry,
  parseCredentialHelpers,
  parseEcrHost,
} from "./index.js";
import { signRs256Jwt } from "./jwt.js";
import { findOnPath } from "./path-lookup.js";

test("ECR hosts give account, region and FIPS; lookalikes do not match", () => {
  assert.deepEqual(parseEcrHost("123456789012.dkr.ecr.eu-west-1.amazonaws.com"), {
    account: "123456789012",
    region: "eu-west-1",
    fips: false,
  });
  assert.deepEqual(parseEcrHost("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com"), {
    account: "123456789012",
    region: "us-gov-west-1",
    fips: true,
  });
  assert.equal(parseEcrHost("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn")?.region, "cn-north-1");
  assert.equal(parseEcrHost("123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.example"), undefined);
  assert.equal(parseEcrHost("12345.dkr.ecr.eu-west-1.amazonaws.com"), undefined);
  assert.equal(parseEcrHost("public.ecr.aws"), undefined);
});

test("Google and Azure registry hosts are matched exactly, not by substring", () => {
  for (const h of ["gcr.io", "eu.gcr.io", "us-docker.pkg.dev", "europe-west1-docker.pkg.dev"]) {
    assert.ok(isGoogleRegistry(h), h);
  }
  for (const h of ["gcr.io.evil.example", "notgcr.io", "docker.io"]) assert.ok(!isGoogleRegistry(h), h);
  assert.ok(isAzureRegistry("myreg.azurecr.io"));
  assert.ok(isAzureRegistry("myreg.azurecr.cn"));
  assert.ok(!isAzureRegistry("myreg.azurecr.io.evil.example"));
  assert.ok(!isAzureRegistry("azurecr.io"));
});

test("config.json helper names of kaniko's image map to built-ins; others do not", () => {
  assert.equal(builtinForHelperName("ecr-login"), "ecr");
  assert.equal(builtinForHelperName("gcr"), "google");
  assert.equal(builtinForHelperName("gcloud"), "google");
  assert.equal(builtinForHelperName("acr-env"), "acr");
  assert.equal(builtinForHelperName("osxkeychain"), undefined);
  assert.equal(builtinForHelperName("toString"), undefined);
});

test("--credential-helpers: empty = all, empty value = none, commas allowed, unknown = usage error", () => {
  assert.equal(parseCredentialHelpers([]), undefined);
  assert.deepEqual(parseCredentialHelpers([""]), []);
  assert.deepEqual(parseCredentialHelpers(["ecr,gitlab", "ecr"]), ["ecr", "gitlab"]);
  assert.throws(
    () => parseCredentialHelpers(["vault"]),
    (e) => hasCode(e, "USAGE"),
  );
});

test("env provider variable names follow the fork's KANIKO_<FQDN>_USER scheme", () => {
  assert.deepEqual(envCredentialPrefixes("registry.gitlab-ci.com"), [
    "KANIKO_REGISTRY_GITLAB_CI_COM",
    "KANIKO_GITLAB_CI_COM",
    "KANIKO_COM",
  ]);
});

test("the automatic lookup honours --credential-helpers", async () => {
  const env = {
    KANIKO_REGISTRY_EXAMPLE_COM_USER: "u",
    KANIKO_REGISTRY_EXAMPLE_COM_PASSWORD: "p",
    CI_REGISTRY: "registry.example.com",
    CI_REGISTRY_USER: "ci",
    CI_REGISTRY_PASSWORD: "job-token",
  };
  assert.deepEqual(await credentialSources(env).auto("registry.example.com"), { username: "u", password: "p" });
  assert.deepEqual(await credentialSources(env, { enabled: ["gitlab"] }).auto("registry.example.com"), {
    username: "ci",
    password: "job-token",
  });
  assert.equal(await credentialSources(env, { enabled: [] }).auto("registry.example.com"), undefined);
  assert.equal(await credentialSources(env).auto("other.example.com"), undefined);
});

test("off Google Cloud the automatic google lookup answers anonymous (public gcr.io stays pullable)", async () => {
  // A closed loopback port stands in for an unreachable metadata server.
  const env = { GCE_METADATA_HOST: "127.0.0.1:9", HOME: "/nonexistent" };
  assert.equal(await credentialSources(env).auto("gcr.io"), undefined);
  // Named explicitly in config.json, the same failure is an error.
  await assert.rejects(credentialSources(env).helper("gcr", "gcr.io", "gcr.io"), (e) =>
    hasCode(e, "CREDENTIAL_PROVIDER_FAILED"),
  );
});

test("a named built-in with nothing configured says what to set; :slim says why it has none", async () => {
  // A closed loopback port stands in for IMDS (the managed-identity fallback never leaves loopback).
  const noImds = { PATH: "", AZURE_POD_IDENTITY_AUTHORITY_HOST: "http://127.0.0.1:9" };
  await assert.rejects(credentialSources(noImds).helper("acr-env", "r.azurecr.io", "r.azurecr.io"), (e: Error) =>
    /AZURE_CLIENT_ID/.test(e.message),
  );
  await assert.rejects(
    credentialSources({ PATH: "", KILN_NO_BUILTIN_CRED_HELPERS: "1" }).helper(
      "acr-env",
      "r.azurecr.io",
      "r.azurecr.io",
    ),
    (e: Error) => hasCode(e, "CREDENTIAL_HELPER_FAILED") && /docker-credential-acr-env is not on PATH/.test(e.message),
  );
});

test("findOnPath finds executables only", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-path-"));
  try {
    await writeFile(path.join(dir, "docker-credential-x"), "#!/bin/sh\n");
    assert.equal(await findOnPath("docker-credential-x", { PATH: dir }), undefined);
    await chmod(path.join(dir, "docker-credential-x"), 0o755);
    assert.equal(
      await findOnPath("docker-credential-x", { PATH: `/nonexistent:${dir}` }),
      path.join(dir, "docker-credential-x"),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("RS256 JWTs verify with the public key", () => {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwt = signRs256Jwt(
    { kid: "k" },
    { iss: "a", aud: "b" },
    privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  );
  const [h = "", c = "", s = ""] = jwt.split(".");
  assert.deepEqual(JSON.parse(Buffer.from(h, "base64url").toString()), { alg: "RS256", typ: "JWT", kid: "k" });
  assert.ok(verify("RSA-SHA256", Buffer.from(`${h}.${c}`), publicKey, Buffer.from(s, "base64url")));
});

test("credsStore ecr-login leaves other registries alone (as the helper answers 'not found')", async () => {
  const sources = credentialSources({ PATH: "" });
  assert.equal(await sources.helper("ecr-login", "index.docker.io", "https://index.docker.io/v1/", true), undefined);
  // Named by a credHelpers entry, the host is trusted to be ECR: without a region that is an error.
  await assert.rejects(sources.helper("ecr-login", "ecr-proxy.internal", "ecr-proxy.internal", false), (e: Error) =>
    /set AWS_REGION/.test(e.message),
  );
});
