import * as assert from "node:assert/strict";
import { test } from "node:test";
import { awsSubjectToken } from "./google-external-aws.js";
import { parseExternalAccount, type AwsSource } from "./google-external-config.js";
import { signAwsRequest } from "./google-external-sigv4.js";

const FILE = "/creds/aws.json";
const AUDIENCE = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/aws/providers/ec2";
const VERIFY = "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15";

function awsConfig(source: Record<string, unknown>): AwsSource {
  const cfg = parseExternalAccount(
    {
      type: "external_account",
      audience: AUDIENCE,
      subject_token_type: "urn:ietf:params:aws:token-type:aws4_request",
      token_url: "https://sts.googleapis.com/v1/token",
      credential_source: { environment_id: "aws1", regional_cred_verification_url: VERIFY, ...source },
    },
    FILE,
  );
  assert.equal(cfg.source.kind, "aws");
  return cfg.source as AwsSource;
}

test("SigV4 matches AWS's documented example (IAM ListUsers, 2015-08-30)", async () => {
  const h = await signAwsRequest({
    method: "GET",
    url: new URL("https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08"),
    headers: { "Content-Type": "application/x-www-form-urlencoded; charset=utf-8" },
    region: "us-east-1",
    service: "iam",
    credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" },
    date: new Date("2015-08-30T12:36:00Z"),
  });
  assert.equal(
    h.authorization,
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
  );
  assert.equal(h["x-amz-date"], "20150830T123600Z");
});

test("aws1 sources parse; other environment ids and non-metadata hosts are refused", () => {
  const src = awsConfig({
    region_url: "http://169.254.169.254/latest/meta-data/placement/availability-zone",
    url: "http://169.254.169.254/latest/meta-data/iam/security-credentials",
    imdsv2_session_token_url: "http://[fd00:ec2::254]/latest/api/token",
  });
  assert.equal(src.verificationUrl, VERIFY);
  assert.equal(src.regionUrl?.hostname, "169.254.169.254");
  assert.equal(src.imdsv2TokenUrl?.hostname, "[fd00:ec2::254]");
  assert.equal(src.audience, AUDIENCE);
  assert.throws(
    () => awsConfig({ environment_id: "aws2" }),
    /"credential_source\.environment_id" is "aws2"; kiln supports "aws1"/,
  );
  assert.throws(
    () => awsConfig({ url: "http://metadata.attacker.example/latest/meta-data/iam/security-credentials" }),
    /"credential_source\.url" names http:\/\/metadata\.attacker\.example; AWS metadata URLs must be on 169\.254\.169\.254/,
  );
  assert.throws(
    () => awsConfig({ regional_cred_verification_url: undefined }),
    /has no "credential_source\.regional_cred_verification_url"/,
  );
});

test("environment credentials: a URL-encoded signed GetCallerIdentity request naming the pool provider", async () => {
  const token = await awsSubjectToken(
    awsConfig({}),
    {
      env: {
        AWS_ACCESS_KEY_ID: "AKIDEXAMPLE",
        AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        AWS_SESSION_TOKEN: "session",
        AWS_DEFAULT_REGION: "ap-south-1",
      },
      timeoutMs: 1000,
    },
    new Date("2026-01-02T03:04:05Z"),
  );
  const req = JSON.parse(decodeURIComponent(token)) as {
    url: string;
    method: string;
    headers: { key: string; value: string }[];
  };
  assert.equal(req.url, "https://sts.ap-south-1.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15");
  assert.equal(req.method, "POST");
  const h = Object.fromEntries(req.headers.map((x) => [x.key, x.value]));
  assert.deepEqual(Object.keys(h), [
    "authorization",
    "host",
    "x-amz-date",
    "x-amz-security-token",
    "x-goog-cloud-target-resource",
  ]);
  assert.equal(h.host, "sts.ap-south-1.amazonaws.com");
  assert.equal(h["x-amz-date"], "20260102T030405Z");
  assert.equal(h["x-goog-cloud-target-resource"], AUDIENCE);
  assert.match(
    h.authorization ?? "",
    /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20260102\/ap-south-1\/sts\/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token;x-goog-cloud-target-resource, Signature=[0-9a-f]{64}$/,
  );
});

test("no region or no credentials and no metadata URL: a clear error", async () => {
  await assert.rejects(
    awsSubjectToken(awsConfig({}), { env: { AWS_ACCESS_KEY_ID: "a", AWS_SECRET_ACCESS_KEY: "b" }, timeoutMs: 1000 }),
    /no AWS region: set AWS_REGION or "credential_source\.region_url"/,
  );
  await assert.rejects(
    awsSubjectToken(awsConfig({}), { env: { AWS_REGION: "eu-west-1" }, timeoutMs: 1000 }),
    /no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "credential_source\.url"/,
  );
});
