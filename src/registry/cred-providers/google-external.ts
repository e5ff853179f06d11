import { KilnError } from "../../common/errors.js";
import { parseExternalAccount, type ExternalAccountConfig } from "./google-external-config.js";
import { describeSource, readSubjectToken } from "./google-external-subject.js";
import { requestJson, stringField, type JsonObject } from "./http.js";
import type { ProviderContext } from "./types.js";

const SCOPE = "https://www.googleapis.com/auth/cloud-platform";
const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";

/** The RFC 8693 form kiln posts to Google's STS for one subject token. */
export function stsForm(cfg: ExternalAccountConfig, subjectToken: string): Record<string, string> {
  const form: Record<string, string> = {
    grant_type: TOKEN_EXCHANGE_GRANT,
    audience: cfg.audience,
    scope: SCOPE,
    requested_token_type: ACCESS_TOKEN_TYPE,
    subject_token: subjectToken,
    subject_token_type: cfg.subjectTokenType,
  };
  // With a client, the client identifies the project; otherwise workforce pools need userProject.
  if (cfg.workforcePoolUserProject !== undefined && cfg.client === undefined) {
    form.options = JSON.stringify({ userProject: cfg.workforcePoolUserProject });
  }
  return form;
}

/** Exchanges the subject token at STS (RFC 8693) for a federated Google access token. */
async function exchange(cfg: ExternalAccountConfig, subjectToken: string, ctx: ProviderContext): Promise<string> {
  const headers: Record<string, string> = {};
  if (cfg.client !== undefined) {
    headers.authorization = `Basic ${Buffer.from(`${cfg.client.id}:${cfg.client.secret}`).toString("base64")}`;
  }
  let res: JsonObject;
  try {
    res = await requestJson({
      url: cfg.tokenUrl,
      headers,
      form: stsForm(cfg, subjectToken),
      provider: "Google (STS token exchange)",
      timeoutMs: ctx.timeoutMs,
    });
  } catch (e) {
    if (!(e instanceof KilnError)) throw e;
    // The audience and the source are not secret and are what a misconfigured pool gets wrong.
    throw new KilnError(
      e.code,
      `${e.message} (audience ${cfg.audience}, subject token of type ${cfg.subjectTokenType} from ${describeSource(cfg.source)}; check the pool provider's issuer or AWS account, allowed audiences and attribute condition)`,
      { cause: e },
    );
  }
  return stringField(res, "access_token", "Google (STS token exchange)", `the STS endpoint ${cfg.tokenUrl.host}`);
}

/** Trades the federated token for the impersonated service account's token (IAM Credentials). */
async function impersonate(cfg: ExternalAccountConfig, url: URL, stsToken: string, ctx: ProviderContext) {
  const res = await requestJson({
    url,
    method: "POST",
    headers: { authorization: `Bearer ${stsToken}` },
    json: { scope: [SCOPE], lifetime: `${cfg.tokenLifetimeSeconds}s` },
    provider: "Google (service account impersonation)",
    timeoutMs: ctx.timeoutMs,
  });
  return stringField(
    res,
    "accessToken",
    "Google (service account impersonation)",
    `the IAM Credentials endpoint ${url.host}`,
  );
}

/**
 * The Google access token of an `"type": "external_account"` credentials file (workload or
 * workforce identity federation, AIP-4117): reads the subject token (file, URL, executable or
 * AWS source), exchanges it at STS (`token_url`, RFC 8693), then, when
 * `service_account_impersonation_url` is set, impersonates that service account (IAM Credentials
 * `generateAccessToken`). Errors name the step and the endpoint, never a token.
 */
export async function externalAccountToken(
  j: Record<string, unknown>,
  file: string,
  ctx: ProviderContext,
): Promise<string> {
  const cfg = parseExternalAccount(j, file);
  const subjectToken = await readSubjectToken(cfg.source, ctx);
  const stsToken = await exchange(cfg, subjectToken, ctx);
  return cfg.impersonationUrl === undefined ? stsToken : impersonate(cfg, cfg.impersonationUrl, stsToken, ctx);
}
