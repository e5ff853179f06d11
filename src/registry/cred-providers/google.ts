import { readFile } from "node:fs/promises";
import * as path from "node:path";
import type { Credentials } from "../credentials.js";
import { googleFail, requiredString } from "./google-errors.js";
import { parseJsonObject, requestJson, stringField } from "./http.js";
import { signRs256Jwt } from "./jwt.js";
import type { CredentialProvider, ProviderContext } from "./types.js";

const SCOPE = "https://www.googleapis.com/auth/cloud-platform";
const DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token";
/** The username GCR and Artifact Registry accept with an OAuth2 access token as password. */
export const GOOGLE_TOKEN_USER = "oauth2accesstoken";

/** True for Container Registry and Artifact Registry hosts (`gcr.io`, `*.gcr.io`, `*-docker.pkg.dev`, `*.pkg.dev`). */
export function isGoogleRegistry(registry: string): boolean {
  const host = registry.replace(/:\d+$/, "");
  return host === "gcr.io" || host.endsWith(".gcr.io") || host.endsWith(".pkg.dev");
}

async function readCredentialsFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw googleFail(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, e);
  }
  const j = parseJsonObject(text);
  if (j) return j;
  throw googleFail(`${file} is not a JSON credentials file`);
}

/** Service-account key: a self-signed JWT assertion exchanged at `token_uri` (RFC 7523). */
async function serviceAccountToken(j: Record<string, unknown>, file: string, ctx: ProviderContext): Promise<string> {
  const email = requiredString(j, "client_email", file);
  const key = requiredString(j, "private_key", file);
  const tokenUri = typeof j.token_uri === "string" && j.token_uri !== "" ? j.token_uri : DEFAULT_TOKEN_URI;
  const now = Math.floor(Date.now() / 1000);
  let assertion: string;
  try {
    assertion = signRs256Jwt(
      typeof j.private_key_id === "string" ? { kid: j.private_key_id } : {},
      { iss: email, scope: SCOPE, aud: tokenUri, iat: now, exp: now + 3600 },
      key,
    );
  } catch (e) {
    throw googleFail(`cannot sign with the private key of ${file}: ${(e as Error).message}`, e);
  }
  const url = new URL(tokenUri);
  const res = await requestJson({
    url,
    form: { grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion },
    provider: "Google",
    timeoutMs: ctx.timeoutMs,
  });
  return stringField(res, "access_token", "Google", url.host);
}

/** `gcloud auth application-default login` credentials: an OAuth2 refresh token. */
async function authorizedUserToken(j: Record<string, unknown>, file: string, ctx: ProviderContext): Promise<string> {
  const tokenUri = typeof j.token_uri === "string" && j.token_uri !== "" ? j.token_uri : DEFAULT_TOKEN_URI;
  const url = new URL(tokenUri);
  const res = await requestJson({
    url,
    form: {
      grant_type: "refresh_token",
      client_id: requiredString(j, "client_id", file),
      client_secret: requiredString(j, "client_secret", file),
      refresh_token: requiredString(j, "refresh_token", file),
    },
    provider: "Google",
    timeoutMs: ctx.timeoutMs,
  });
  return stringField(res, "access_token", "Google", url.host);
}

async function fileToken(file: string, ctx: ProviderContext): Promise<string> {
  const j = await readCredentialsFile(file);
  if (j.type === "service_account") return serviceAccountToken(j, file, ctx);
  if (j.type === "authorized_user") return authorizedUserToken(j, file, ctx);
  if (j.type === "external_account") {
    // Workload identity federation: loaded on first use (a chunk of its own in the bundle).
    const { externalAccountToken } = await import("./google-external.js");
    return externalAccountToken(j, file, ctx);
  }
  throw googleFail(
    `${file} has credentials of type ${JSON.stringify(j.type)}; kiln supports "service_account", "authorized_user" and "external_account" (use the metadata server or an access token in config.json otherwise)`,
  );
}

/** The GCE/GKE metadata server (workload identity): the default service account's token. */
async function metadataToken(ctx: ProviderContext): Promise<string> {
  const host = ctx.env.GCE_METADATA_HOST || "metadata.google.internal";
  const url = new URL(`http://${host}/computeMetadata/v1/instance/service-accounts/default/token`);
  const res = await requestJson({
    url,
    headers: { "metadata-flavor": "Google" },
    provider: "Google (metadata server)",
    timeoutMs: ctx.timeoutMs,
  });
  return stringField(res, "access_token", "Google", `the metadata server ${host}`);
}

function exists(file: string): Promise<boolean> {
  return readFile(file).then(
    () => true,
    () => false,
  );
}

/**
 * Google Container Registry / Artifact Registry (`gcr`, `gcloud`): an OAuth2 access token from
 * Application Default Credentials — `GOOGLE_APPLICATION_CREDENTIALS` (service-account key,
 * authorized-user file — its `token_uri` is honoured — or an `external_account` file of workload
 * identity federation, see `externalAccountToken` in google-external.ts), then gcloud's
 * `~/.config/gcloud/application_default_credentials.json`, then the metadata server
 * (`GCE_METADATA_HOST`, default `metadata.google.internal`). Username `oauth2accesstoken`.
 */
export const googleProvider: CredentialProvider = {
  name: "google",
  matches: (registry) => isGoogleRegistry(registry),
  // Without explicit credentials only the GCE/GKE metadata server is left to ask.
  guessesIdentity: (env) => !env.GOOGLE_APPLICATION_CREDENTIALS,
  async get(_registry: string, ctx: ProviderContext): Promise<Credentials | undefined> {
    const { env } = ctx;
    let token: string;
    if (env.GOOGLE_APPLICATION_CREDENTIALS) {
      token = await fileToken(env.GOOGLE_APPLICATION_CREDENTIALS, ctx);
    } else {
      const configDir = env.CLOUDSDK_CONFIG || (env.HOME ? path.join(env.HOME, ".config", "gcloud") : undefined);
      const adc = configDir ? path.join(configDir, "application_default_credentials.json") : undefined;
      token = adc !== undefined && (await exists(adc)) ? await fileToken(adc, ctx) : await metadataToken(ctx);
    }
    return { username: GOOGLE_TOKEN_USER, password: token };
  },
};
