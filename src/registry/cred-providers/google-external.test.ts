import * as assert from "node:assert/strict";
import { test } from "node:test";
import { hasCode } from "../../common/errors.js";
import { checkGoogleUrl, parseExternalAccount } from "./google-external-config.js";
import { extractSubjectToken } from "./google-external-subject.js";
import { stsForm } from "./google-external.js";

const FILE = "/creds/wif.json";
const AUDIENCE = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/ci/providers/gitlab";
const WORKFORCE = "//iam.googleapis.com/locations/global/workforcePools/staff/providers/okta";

function base(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: "external_account",
    audience: AUDIENCE,
    subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
    token_url: "https://sts.googleapis.com/v1/token",
    credential_source: { file: "/var/run/oidc/token" },
    ...extra,
  };
}

function rejects(f: () => unknown, pattern: RegExp): void {
  assert.throws(f, (e: Error) => {
    assert.ok(hasCode(e, "CREDENTIAL_PROVIDER_FAILED"), String(e));
    assert.match(e.message, pattern);
    return true;
  });
}

test("a gcloud create-cred-config file (OIDC file source, impersonation) parses with its defaults", () => {
  const cfg = parseExternalAccount(
    base({
      service_account_impersonation_url:
        "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/ci@p.iam.gserviceaccount.com:generateAccessToken",
      quota_project_id: "billing",
    }),
    FILE,
  );
  assert.equal(cfg.audience, AUDIENCE);
  assert.equal(cfg.tokenUrl.href, "https://sts.googleapis.com/v1/token");
  assert.equal(cfg.impersonationUrl?.host, "iamcredentials.googleapis.com");
  assert.equal(cfg.tokenLifetimeSeconds, 3600);
  assert.deepEqual(cfg.source, { kind: "file", file: "/var/run/oidc/token", format: { type: "text" } });
  assert.equal(cfg.client, undefined);
});

test("token_url defaults to Google's STS; lifetime, client and workforce project are read", () => {
  const j = base({
    audience: WORKFORCE,
    workforce_pool_user_project: "my-project",
    service_account_impersonation: { token_lifetime_seconds: 1200 },
    client_id: "cid",
    client_secret: "csecret",
  });
  delete j.token_url;
  const cfg = parseExternalAccount(j, FILE);
  assert.equal(cfg.tokenUrl.href, "https://sts.googleapis.com/v1/token");
  assert.equal(cfg.tokenLifetimeSeconds, 1200);
  assert.equal(cfg.workforcePoolUserProject, "my-project");
  assert.deepEqual(cfg.client, { id: "cid", secret: "csecret" });
});

test("URL sources keep headers (lower-cased) and the JSON format", () => {
  const cfg = parseExternalAccount(
    base({
      credential_source: {
        url: "https://token.actions.githubusercontent.com/?audience=x",
        headers: { Authorization: "Bearer runtime" },
        format: { type: "json", subject_token_field_name: "value" },
      },
    }),
    FILE,
  );
  assert.equal(cfg.source.kind, "url");
  if (cfg.source.kind !== "url") return;
  assert.equal(cfg.source.url.host, "token.actions.githubusercontent.com");
  assert.deepEqual(cfg.source.headers, { authorization: "Bearer runtime" });
  assert.deepEqual(cfg.source.format, { type: "json", field: "value" });
  // Azure IMDS is plain http on a link-local address: allowed.
  const azure = parseExternalAccount(
    base({
      credential_source: {
        url: "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x",
        headers: { Metadata: "True" },
        format: { type: "json", subject_token_field_name: "access_token" },
      },
    }),
    FILE,
  );
  assert.equal(azure.source.kind, "url");
});

test("Google STS and IAM Credentials hosts are accepted; lookalikes, http and other hosts are not", () => {
  for (const u of [
    "https://sts.googleapis.com/v1/token",
    "https://sts.mtls.googleapis.com/v1/token",
    "https://us-east-1.sts.googleapis.com",
    "https://sts.us-east-1.googleapis.com",
    "https://us-west-1-sts.googleapis.com",
    "https://sts.europe-west3.rep.googleapis.com/v1/token",
    "https://sts-xyz123.p.googleapis.com/v1/token",
    "https://STS.GOOGLEAPIS.COM/v1/token",
    "http://127.0.0.1:8080/v1/token",
    "https://localhost:9443/v1/token",
    "http://[::1]:1/v1/token",
  ]) {
    assert.equal(checkGoogleUrl(u, "token_url", "sts", FILE).protocol.startsWith("http"), true, u);
  }
  for (const u of [
    "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/a@b:generateAccessToken",
    "https://iamcredentials.us-east1.rep.googleapis.com/v1/x",
    "https://iamcredentials-psc.p.googleapis.com/v1/x",
  ]) {
    assert.ok(checkGoogleUrl(u, "service_account_impersonation_url", "iamcredentials", FILE), u);
  }
  for (const u of [
    "http://sts.googleapis.com/v1/token",
    "https://sts.googleapis.com.evil.example/v1/token",
    "https://evil.example/v1/token",
    "https://sts.pgoogleapis.com/v1/token",
    "https://p.googleapis.com",
    "https://xyz-sts.p.googleapis.com",
    "https://iamcredentials.googleapis.com/v1/token",
    "https://sts.a.b.googleapis.com",
    "ftp://127.0.0.1/token",
    "https://10.0.0.1/v1/token",
  ]) {
    assert.throws(
      () => checkGoogleUrl(u, "token_url", "sts", FILE),
      /"token_url" names .* not a Google STS endpoint/,
      u,
    );
  }
  rejects(
    () =>
      parseExternalAccount(
        base({ service_account_impersonation_url: "https://sts.googleapis.com/v1/x:generateAccessToken" }),
        FILE,
      ),
    /"service_account_impersonation_url" names https:\/\/sts\.googleapis\.com, which is not a Google IAM Credentials endpoint/,
  );
  rejects(
    () => parseExternalAccount(base({ token_url: "https://sts.attacker.example:8443/v1/token" }), FILE),
    /\/creds\/wif\.json: "token_url" names https:\/\/sts\.attacker\.example:8443/,
  );
  rejects(() => parseExternalAccount(base({ token_url: "not a url" }), FILE), /"token_url" is not a URL/);
  assert.ok(parseExternalAccount(base({ universe_domain: "googleapis.com" }), FILE));
  rejects(
    () => parseExternalAccount(base({ universe_domain: "sovereign.example" }), FILE),
    /is for the universe sovereign\.example; kiln exchanges tokens only with Google Cloud's own endpoints/,
  );
  rejects(
    () => parseExternalAccount(base({ token_url: "https://u:p@sts.googleapis.com/v1/token" }), FILE),
    /must not carry credentials/,
  );
});

test("a plain-http subject token URL is refused unless loopback or link-local metadata", () => {
  rejects(
    () => parseExternalAccount(base({ credential_source: { url: "http://idp.example/token" } }), FILE),
    /"credential_source\.url" \(http:\/\/idp\.example\) must be https/,
  );
  assert.ok(parseExternalAccount(base({ credential_source: { url: "http://127.0.0.1:9/t" } }), FILE));
});

test("X.509 certificate sources are refused naming the source type and what is supported", () => {
  rejects(
    () =>
      parseExternalAccount(
        base({ credential_source: { certificate: { use_default_certificate_config: true } } }),
        FILE,
      ),
    /uses an X\.509 certificate source \(mTLS workload identity federation\); kiln supports file-, URL-, executable- and AWS-sourced subject tokens/,
  );
});

test("missing or malformed fields name the file and the field", () => {
  const noAudience = base();
  delete noAudience.audience;
  rejects(() => parseExternalAccount(noAudience, FILE), /\/creds\/wif\.json has no "audience"/);
  const noType = base();
  delete noType.subject_token_type;
  rejects(() => parseExternalAccount(noType, FILE), /has no "subject_token_type"/);
  rejects(() => parseExternalAccount(base({ credential_source: undefined }), FILE), /has no "credential_source"/);
  rejects(() => parseExternalAccount(base({ credential_source: {} }), FILE), /neither "file" nor "url"/);
  rejects(
    () => parseExternalAccount(base({ credential_source: { file: "/a", url: "https://x.example" } }), FILE),
    /both "file" and "url"/,
  );
  rejects(
    () => parseExternalAccount(base({ credential_source: { file: "/a", format: { type: "json" } } }), FILE),
    /has no "credential_source\.format\.subject_token_field_name"/,
  );
  rejects(
    () => parseExternalAccount(base({ credential_source: { file: "/a", format: { type: "xml" } } }), FILE),
    /"credential_source\.format\.type" is "xml"; expected "text" or "json"/,
  );
  rejects(
    () => parseExternalAccount(base({ service_account_impersonation: { token_lifetime_seconds: "1h" } }), FILE),
    /token_lifetime_seconds" must be a positive whole number/,
  );
  rejects(
    () => parseExternalAccount(base({ workforce_pool_user_project: "p" }), FILE),
    /"workforce_pool_user_project" is only valid with a workforce pool audience/,
  );
});

test("subject tokens: text is trimmed, JSON reads the named field, empty or missing fails without the content", () => {
  assert.equal(extractSubjectToken("eyJ.a.b\n", { type: "text" }, "f"), "eyJ.a.b");
  assert.equal(extractSubjectToken('{"value":"eyJ.c.d","count":1}', { type: "json", field: "value" }, "f"), "eyJ.c.d");
  assert.throws(() => extractSubjectToken(" \n", { type: "text" }, "the file /t"), /the file \/t is empty/);
  assert.throws(
    () => extractSubjectToken('{"id_token":"secret-value"}', { type: "json", field: "value" }, "f"),
    (e: Error) => /has no string field "value"/.test(e.message) && !e.message.includes("secret-value"),
  );
  assert.throws(
    () => extractSubjectToken("secret-value", { type: "json", field: "value" }, "f"),
    (e: Error) => /is not JSON/.test(e.message) && !e.message.includes("secret-value"),
  );
});

test("the STS form is RFC 8693 with cloud-platform scope; options.userProject only for workforce without a client", () => {
  const cfg = parseExternalAccount(base(), FILE);
  assert.deepEqual(stsForm(cfg, "subj"), {
    grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
    audience: AUDIENCE,
    scope: "https://www.googleapis.com/auth/cloud-platform",
    requested_token_type: "urn:ietf:params:oauth:token-type:access_token",
    subject_token: "subj",
    subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
  });
  const wf = parseExternalAccount(base({ audience: WORKFORCE, workforce_pool_user_project: "proj-1" }), FILE);
  assert.equal(stsForm(wf, "s").options, '{"userProject":"proj-1"}');
  const wfClient = parseExternalAccount(
    base({ audience: WORKFORCE, workforce_pool_user_project: "proj-1", client_id: "c", client_secret: "s" }),
    FILE,
  );
  assert.equal(stsForm(wfClient, "s").options, undefined);
});
