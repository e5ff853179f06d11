import * as assert from "node:assert/strict";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { hasCode } from "../../common/errors.js";
import { parseExternalAccount, type ExecutableSource } from "./google-external-config.js";
import { executableSubjectToken, parseExecutableResponse } from "./google-external-executable.js";

const FILE = "/creds/wif.json";
const AUDIENCE = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/ci/providers/exe";
const ID_TYPE = "urn:ietf:params:oauth:token-type:id_token";
let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "kiln-google-exe-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function config(executable: Record<string, unknown>, extra: Record<string, unknown> = {}): ExecutableSource {
  const cfg = parseExternalAccount(
    {
      type: "external_account",
      audience: AUDIENCE,
      subject_token_type: ID_TYPE,
      credential_source: { executable },
      ...extra,
    },
    FILE,
  );
  assert.equal(cfg.source.kind, "executable");
  return cfg.source as ExecutableSource;
}

/** A shell script printing `body` (after shell expansion) and recording each run in `<name>.runs`. */
async function script(name: string, body: string, exit = 0): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, `#!/bin/sh\necho run >> ${file}.runs\ncat <<EOF\n${body}\nEOF\nexit ${exit}\n`);
  await chmod(file, 0o755);
  return file;
}

async function runs(file: string): Promise<number> {
  return (await readFile(`${file}.runs`, "utf8").catch(() => "")).split("\n").filter((l) => l === "run").length;
}

const ALLOW = { GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES: "1", PATH: process.env.PATH };
const future = () => Math.floor(Date.now() / 1000) + 3600;

test("the executable config: command split at whitespace, timeout default and range, GOOGLE_EXTERNAL_ACCOUNT_* env", () => {
  const src = config(
    { command: "/usr/bin/get-token  --aud x", output_file: "/tmp/cache.json" },
    {
      service_account_impersonation_url:
        "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/ci@p.iam.gserviceaccount.com:generateAccessToken",
    },
  );
  assert.deepEqual(src.argv, ["/usr/bin/get-token", "--aud", "x"]);
  assert.equal(src.timeoutMs, 30_000);
  assert.deepEqual(src.env, {
    GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: AUDIENCE,
    GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE: ID_TYPE,
    GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE: "0",
    GOOGLE_EXTERNAL_ACCOUNT_IMPERSONATED_EMAIL: "ci@p.iam.gserviceaccount.com",
    GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE: "/tmp/cache.json",
  });
  assert.equal(config({ command: "x", timeout_millis: 5000 }).timeoutMs, 5000);
  for (const t of [4999, 120_001, "30s"]) {
    assert.throws(() => config({ command: "x", timeout_millis: t }), /timeout_millis" must be a whole number/);
  }
  assert.throws(() => config({ command: "  " }), /has no "credential_source\.executable\.command"/);
});

test("responses: version 1 OIDC and SAML succeed; failures, other versions and missing fields are named", () => {
  const ok = (j: Record<string, unknown>, requireExpiry = false) =>
    parseExecutableResponse(JSON.stringify(j), "the output", { requireExpiry, nowSeconds: 1000 });
  assert.deepEqual(ok({ version: 1, success: true, token_type: ID_TYPE, id_token: "t1", expiration_time: 2000 }), {
    token: "t1",
    expired: false,
  });
  assert.deepEqual(
    ok({ version: 1, success: true, token_type: "urn:ietf:params:oauth:token-type:saml2", saml_response: "s" }),
    { token: "s", expired: false },
  );
  assert.equal(
    ok({ version: 1, success: true, token_type: ID_TYPE, id_token: "t", expiration_time: 999 }).expired,
    true,
  );
  assert.throws(
    () => ok({ version: 1, success: false, code: "401", message: "Caller not authorized." }),
    (e: Error) => {
      assert.ok(hasCode(e, "CREDENTIAL_PROVIDER_FAILED"));
      assert.match(e.message, /the output reports failure \(code 401\): Caller not authorized\./);
      return true;
    },
  );
  assert.throws(() => ok({ version: 2, success: true }), /has version 2; kiln understands version 1/);
  assert.throws(() => ok({ success: true }), /the output has no "version"/);
  assert.throws(() => ok({ version: 1, success: true, token_type: "x" }), /has token_type "x"/);
  assert.throws(() => ok({ version: 1, success: true, token_type: ID_TYPE }), /has no "id_token"/);
  assert.throws(
    () => ok({ version: 1, success: true, token_type: ID_TYPE, id_token: "t" }, true),
    /has no "expiration_time" \(required when "output_file" is set\)/,
  );
  assert.throws(
    () => parseExecutableResponse("secret-not-json", "the output", { requireExpiry: false }),
    (e: Error) => /is not a JSON object/.test(e.message) && !e.message.includes("secret-not-json"),
  );
});

test("without GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1 the command does not run", async () => {
  const exe = await script("never", "{}");
  await assert.rejects(
    executableSubjectToken(config({ command: exe }), { env: { PATH: process.env.PATH }, timeoutMs: 5000 }),
    /runs the command .*never for its subject token; set GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1/,
  );
  assert.equal(await runs(exe), 0);
});

test("the command runs with the GOOGLE_EXTERNAL_ACCOUNT_* variables and its id_token is the subject token", async () => {
  const exe = await script(
    "ok",
    `{"version":1,"success":true,"token_type":"${ID_TYPE}","id_token":"tok:$GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE:$GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE"}`,
  );
  const token = await executableSubjectToken(config({ command: exe }), { env: ALLOW, timeoutMs: 5000 });
  assert.equal(token, `tok:${AUDIENCE}:0`);
});

test("a failing command: non-zero exit or a failure response, named without its output", async () => {
  const exit = await script("exit3", "secret-partial-output", 3);
  await assert.rejects(
    executableSubjectToken(config({ command: exit }), { env: ALLOW, timeoutMs: 5000 }),
    (e: Error) =>
      /the credential executable .*exit3 exited with code 3/.test(e.message) && !e.message.includes("secret"),
  );
  const denied = await script("denied", '{"version":1,"success":false,"code":"403","message":"no id token"}');
  await assert.rejects(
    executableSubjectToken(config({ command: denied }), { env: ALLOW, timeoutMs: 5000 }),
    /the output of .*denied reports failure \(code 403\): no id token/,
  );
  await assert.rejects(
    executableSubjectToken(config({ command: path.join(dir, "missing") }), { env: ALLOW, timeoutMs: 5000 }),
    /cannot run the credential executable .*missing: .*ENOENT/,
  );
});

test("output_file: a valid cached response is used without running; an expired one runs the command", async () => {
  const cache = path.join(dir, "cache.json");
  const exe = await script(
    "cached",
    `{"version":1,"success":true,"token_type":"${ID_TYPE}","id_token":"fresh","expiration_time":${future()}}`,
  );
  const src = config({ command: exe, output_file: cache });
  await writeFile(
    cache,
    JSON.stringify({ version: 1, success: true, token_type: ID_TYPE, id_token: "cached", expiration_time: future() }),
  );
  assert.equal(await executableSubjectToken(src, { env: ALLOW, timeoutMs: 5000 }), "cached");
  assert.equal(await runs(exe), 0);
  await writeFile(
    cache,
    JSON.stringify({ version: 1, success: true, token_type: ID_TYPE, id_token: "old", expiration_time: 10 }),
  );
  assert.equal(await executableSubjectToken(src, { env: ALLOW, timeoutMs: 5000 }), "fresh");
  assert.equal(await runs(exe), 1);
  // With output_file, a response without expiration_time is refused.
  const noExp = await script("noexp", `{"version":1,"success":true,"token_type":"${ID_TYPE}","id_token":"t"}`);
  await assert.rejects(
    executableSubjectToken(config({ command: noExp, output_file: path.join(dir, "none.json") }), {
      env: ALLOW,
      timeoutMs: 5000,
    }),
    /has no "expiration_time"/,
  );
});

test("a command outliving timeout_millis is killed and named", async () => {
  const slow = path.join(dir, "slow");
  await writeFile(slow, "#!/bin/sh\nexec sleep 60\n");
  await chmod(slow, 0o755);
  // timeout_millis is at least 5000 in a file; a parsed source with a shorter one keeps the test quick.
  const src: ExecutableSource = { ...config({ command: slow }), timeoutMs: 150 };
  const t0 = Date.now();
  await assert.rejects(
    executableSubjectToken(src, { env: ALLOW, timeoutMs: 5000 }),
    /the credential executable .*slow did not finish within 150 ms \(timeout_millis\)/,
  );
  assert.ok(Date.now() - t0 < 30_000, "killed, not waited for");
});
