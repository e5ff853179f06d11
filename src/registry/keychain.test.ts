import * as assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { hasCode } from "../common/errors.js";
import { dockerConfigKeychain, dockerConfigPath } from "./keychain.js";

const root = mkdtempSync(path.join(tmpdir(), "kiln-keychain-"));
after(() => rmSync(root, { recursive: true, force: true }));
const helperDir = path.resolve(process.cwd(), "test/support");

function configDir(name: string, cfg: unknown): string {
  const dir = path.join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "config.json"), JSON.stringify(cfg));
  return dir;
}

const b64 = (s: string): string => Buffer.from(s).toString("base64");

test("auths: auth field split at the first colon, trailing NULs trimmed, beats username/password", async () => {
  const dir = configDir("basic", {
    auths: {
      "registry.example.com": { auth: b64("alice:pa:ss\0\0"), username: "ignored", password: "ignored" },
      "https://other.example.com/v2/": { username: "bob", password: "pw" },
      "repo.example.com/team/app": { auth: b64("team:t") },
      "repo.example.com": { auth: b64("any:a") },
    },
  });
  const kc = dockerConfigKeychain({ DOCKER_CONFIG: dir });
  assert.deepEqual(await kc.resolve("registry.example.com"), { username: "alice", password: "pa:ss" });
  assert.deepEqual(await kc.resolve("other.example.com"), { username: "bob", password: "pw" });
  assert.deepEqual(await kc.resolve("repo.example.com", "team/app"), { username: "team", password: "t" });
  assert.deepEqual(await kc.resolve("repo.example.com", "team/other"), { username: "any", password: "a" });
  assert.equal(await kc.resolve("unknown.example.com"), undefined);
});

test("identitytoken and registrytoken are passed through", async () => {
  const dir = configDir("tokens", {
    auths: { "a.example.com": { identitytoken: "refresh-1" }, "b.example.com": { registrytoken: "bearer-1" } },
  });
  const kc = dockerConfigKeychain({ DOCKER_CONFIG: dir });
  assert.deepEqual(await kc.resolve("a.example.com"), { identityToken: "refresh-1" });
  assert.deepEqual(await kc.resolve("b.example.com"), { registryToken: "bearer-1" });
});

test("Docker Hub: the v1 key and the other spellings all work", async () => {
  for (const key of [
    "https://index.docker.io/v1/",
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "https://index.docker.io/v2/",
  ]) {
    const dir = configDir(`hub-${key.replace(/[^a-z0-9]/g, "_")}`, { auths: { [key]: { auth: b64("hub:pw") } } });
    const kc = dockerConfigKeychain({ DOCKER_CONFIG: dir });
    assert.deepEqual(await kc.resolve("index.docker.io", "library/busybox"), { username: "hub", password: "pw" }, key);
  }
});

test("an auth without a username is an INVALID_DOCKER_CONFIG error naming the file", async () => {
  const dir = configDir("bad", { auths: { "x.example.com": { auth: b64(":nopass") } } });
  await assert.rejects(
    dockerConfigKeychain({ DOCKER_CONFIG: dir }).resolve("x.example.com"),
    (e: unknown) => hasCode(e, "INVALID_DOCKER_CONFIG") && e.message.includes(path.join(dir, "config.json")),
  );
});

test("a config that is not JSON is named with the place of the mistake, never with its text (credentials)", async () => {
  const dir = path.join(root, "not-json");
  mkdirSync(dir, { recursive: true });
  // An unquoted auth value: Node's JSON.parse message would quote the base64 of user:password around it.
  const secret = b64("bob:hunter2-very-secret");
  writeFileSync(path.join(dir, "config.json"), `{\n  "auths": {\n    "x.example.com": { "auth": ${secret} }\n  }\n}\n`);
  await assert.rejects(dockerConfigKeychain({ DOCKER_CONFIG: dir }).resolve("x.example.com"), (e: unknown) => {
    assert.ok(hasCode(e, "INVALID_DOCKER_CONFIG"));
    assert.match(e.message, /config\.json is not valid JSON/);
    const shown = JSON.stringify({ message: e.message, cause: String(e.cause ?? "") });
    assert.ok(!shown.includes(secret.slice(0, 8)), shown);
    return true;
  });
});

test("config file lookup order: DOCKER_CONFIG, then HOME, then REGISTRY_AUTH_FILE", () => {
  const home = path.join(root, "home");
  mkdirSync(path.join(home, ".docker"), { recursive: true });
  writeFileSync(path.join(home, ".docker", "config.json"), "{}");
  const dc = configDir("dc", {});
  assert.equal(dockerConfigPath({ DOCKER_CONFIG: dc, HOME: home }), path.join(dc, "config.json"));
  assert.equal(
    dockerConfigPath({ DOCKER_CONFIG: path.join(root, "missing"), HOME: home }),
    path.join(home, ".docker", "config.json"),
  );
  const authFile = path.join(root, "auth.json");
  writeFileSync(authFile, "{}");
  assert.equal(dockerConfigPath({ HOME: path.join(root, "nohome"), REGISTRY_AUTH_FILE: authFile }), authFile);
  assert.equal(dockerConfigPath({ HOME: path.join(root, "nohome") }), undefined);
});

test("credHelpers and credsStore run docker-credential-* (not found = next source)", async () => {
  const dir = configDir("helpers", {
    credHelpers: { "helped.example.com": "kilntest" },
    credsStore: "kilntest",
    auths: { "fallback.example.com": { auth: b64("file:f") } },
  });
  const env = {
    DOCKER_CONFIG: dir,
    PATH: `${helperDir}:${process.env.PATH ?? ""}`,
    KILNTEST_SERVER: "helped.example.com",
    KILNTEST_USER: "helper-user",
    KILNTEST_SECRET: "helper-secret",
  };
  const kc = dockerConfigKeychain(env);
  assert.deepEqual(await kc.resolve("helped.example.com"), { username: "helper-user", password: "helper-secret" });
  assert.deepEqual(await kc.resolve("fallback.example.com"), { username: "file", password: "f" });
  assert.equal(await kc.resolve("nothing.example.com"), undefined);
  const hub = dockerConfigKeychain({
    ...env,
    KILNTEST_SERVER: "https://index.docker.io/v1/",
    KILNTEST_USER: "<token>",
  });
  assert.deepEqual(await hub.resolve("index.docker.io"), { identityToken: "helper-secret" });
});

test("a missing helper is a CREDENTIAL_HELPER_FAILED error", async () => {
  const dir = configDir("nohelper", { credsStore: "does-not-exist-kiln" });
  await assert.rejects(
    dockerConfigKeychain({ DOCKER_CONFIG: dir, PATH: "/nonexistent" }).resolve("x.example.com"),
    (e: unknown) =>
      hasCode(e, "CREDENTIAL_HELPER_FAILED") && e.message.includes("docker-credential-does-not-exist-kiln"),
  );
});

test("GitLab CI variables apply to CI_REGISTRY only", async () => {
  const env = {
    HOME: path.join(root, "nohome"),
    CI_REGISTRY: "gitlab.example.com:5050",
    CI_REGISTRY_USER: "gitlab-ci-token",
    CI_REGISTRY_PASSWORD: "job-token",
  };
  const kc = dockerConfigKeychain(env);
  assert.deepEqual(await kc.resolve("gitlab.example.com:5050", "group/app"), {
    username: "gitlab-ci-token",
    password: "job-token",
  });
  assert.equal(await kc.resolve("other.example.com"), undefined);
});
