import { type AwsSource } from "./google-external-config.js";
import { googleFail } from "./google-errors.js";
import { envAccessKeys, type AwsCredentials } from "./aws-token.js";
import { signAwsRequest } from "./google-external-sigv4.js";
import { requestJson, requestText } from "./http.js";
import type { ProviderContext } from "./types.js";

const PROVIDER = "Google (AWS metadata for workload identity federation)";

function metadataField(j: Record<string, unknown>, name: string, url: URL): string {
  const v = j[name];
  if (typeof v !== "string" || v === "") {
    throw googleFail(`the AWS metadata answer of ${url.host}${url.pathname} has no "${name}"`);
  }
  return v;
}

/** Region and credentials from the environment, else from the instance metadata service (IMDSv2 when configured). */
async function awsContext(
  src: AwsSource,
  ctx: ProviderContext,
): Promise<{ region: string; credentials: AwsCredentials }> {
  let region = ctx.env.AWS_REGION || ctx.env.AWS_DEFAULT_REGION || undefined;
  let credentials = envAccessKeys(ctx.env);
  if (region !== undefined && credentials !== undefined) return { region, credentials };
  const headers: Record<string, string> = {};
  if (src.imdsv2TokenUrl !== undefined) {
    const token = await requestText({
      url: src.imdsv2TokenUrl,
      method: "PUT",
      headers: { "x-aws-ec2-metadata-token-ttl-seconds": "300" },
      provider: PROVIDER,
      timeoutMs: ctx.timeoutMs,
    });
    headers["x-aws-ec2-metadata-token"] = token.trim();
  }
  if (region === undefined) {
    if (src.regionUrl === undefined) {
      throw googleFail(`no AWS region: set AWS_REGION or "credential_source.region_url" in the credentials file`);
    }
    const zone = (
      await requestText({ url: src.regionUrl, method: "GET", headers, provider: PROVIDER, timeoutMs: ctx.timeoutMs })
    ).trim();
    // An availability zone ("us-east-2b") names its region without the last letter.
    if (!/^[a-z0-9-]+[a-z]$/.test(zone)) throw googleFail(`${src.regionUrl.host} answered no availability zone`);
    region = zone.slice(0, -1);
  }
  if (credentials === undefined) {
    const base = src.credentialsUrl;
    if (base === undefined) {
      throw googleFail(
        `no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "credential_source.url" (the instance metadata security-credentials URL)`,
      );
    }
    const role = (
      await requestText({ url: base, method: "GET", headers, provider: PROVIDER, timeoutMs: ctx.timeoutMs })
    ).trim();
    if (role === "" || role.includes("/") || role.includes("\n")) {
      throw googleFail(`${base.host} answered no IAM role name; attach an instance profile to the instance`);
    }
    const roleUrl = new URL(`${base.href.replace(/\/$/, "")}/${encodeURIComponent(role)}`);
    const j = await requestJson({ url: roleUrl, method: "GET", headers, provider: PROVIDER, timeoutMs: ctx.timeoutMs });
    credentials = {
      accessKeyId: metadataField(j, "AccessKeyId", roleUrl),
      secretAccessKey: metadataField(j, "SecretAccessKey", roleUrl),
      ...(typeof j.Token === "string" && j.Token !== "" ? { sessionToken: j.Token } : {}),
    };
  }
  return { region, credentials };
}

/**
 * The subject token of an AWS source (AIP-4117): a GetCallerIdentity request to
 * `regional_cred_verification_url` signed with AWS Signature Version 4 (the pool provider signed as
 * `x-goog-cloud-target-resource`), serialised as URL-encoded JSON `{url, method, headers: [{key,
 * value}]}` for Google's STS to replay. Region and credentials come from the environment
 * (`AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`)
 * or from the instance metadata URLs of the file (with an IMDSv2 session token when configured).
 */
export async function awsSubjectToken(src: AwsSource, ctx: ProviderContext, date = new Date()): Promise<string> {
  const { region, credentials } = await awsContext(src, ctx);
  if (!/^[a-z0-9-]+$/.test(region)) throw googleFail(`the AWS region ${JSON.stringify(region)} is not a region name`);
  const href = src.verificationUrl.replace("{region}", region);
  let url: URL;
  try {
    url = new URL(href);
  } catch {
    throw googleFail(`"credential_source.regional_cred_verification_url" is not a URL`);
  }
  const headers = await signAwsRequest({
    method: "POST",
    url,
    headers: { "x-goog-cloud-target-resource": src.audience },
    region,
    service: "sts",
    credentials,
    date,
  });
  const list = Object.keys(headers)
    .sort()
    .map((key) => ({ key, value: headers[key] ?? "" }));
  return encodeURIComponent(JSON.stringify({ url: href, method: "POST", headers: list }));
}
