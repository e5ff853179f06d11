import { readFile } from "node:fs/promises";
import type { Credentials } from "../credentials.js";
import { acrFail, acrGuessesImds, managedIdentityToken } from "./acr-managed-identity.js";
import { isLoopbackHost, requestJson, stringField } from "./http.js";
import type { CredentialProvider, ProviderContext } from "./types.js";

/** The username ACR accepts with a refresh token from `/oauth2/exchange` as password. */
export const ACR_TOKEN_USER = "00000000-0000-0000-0000-000000000000";
const ARM_SCOPE = "https://management.azure.com/.default";
const DEFAULT_AUTHORITY = "https://login.microsoftonline.com/";

/** True for Azure Container Registry hosts (`<name>.azurecr.io` and the sovereign clouds' suffixes). */
export function isAzureRegistry(registry: string): boolean {
  return /^[a-z0-9][a-z0-9-]*\.azurecr\.(io|cn|de|us)$/i.test(registry);
}

function definedOnly(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== "") out[k] = v;
  return out;
}

/**
 * The service principal of an Azure cloud-provider config file (kaniko's hidden
 * `--azure-container-registry-config`, the Kubernetes `azure.json`: `tenantId`, `aadClientId`,
 * `aadClientSecret`) as the environment variables the provider reads; variables that are set win.
 * With `useManagedIdentityExtension: true` (AKS kubelet identity; `aadClientId`/`aadClientSecret`
 * are then placeholders) the file names a managed identity: `userAssignedIdentityID` as
 * `AZURE_CLIENT_ID`, no secret.
 */
async function cloudConfig(registry: string, file: string | undefined): Promise<Record<string, string>> {
  if (!file) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, "utf8"));
  } catch (e) {
    throw acrFail(
      registry,
      `cannot read the Azure config ${file} (--azure-container-registry-config; JSON expected)`,
      e,
    );
  }
  const o = (typeof parsed === "object" && parsed !== null ? parsed : {}) as Record<string, unknown>;
  const out: Record<string, string> = {};
  const take = (key: string, envName: string): void => {
    const v = o[key];
    if (typeof v === "string" && v !== "") out[envName] = v;
  };
  take("tenantId", "AZURE_TENANT_ID");
  if (o.useManagedIdentityExtension === true) {
    take("userAssignedIdentityID", "AZURE_CLIENT_ID");
    return out;
  }
  take("aadClientId", "AZURE_CLIENT_ID");
  take("aadClientSecret", "AZURE_CLIENT_SECRET");
  return out;
}

/** An Azure AD access token for ARM, by client secret or workload identity (federated token file). */
async function aadToken(
  registry: string,
  env: Record<string, string>,
  ctx: ProviderContext,
): Promise<{ token: string; tenant: string } | undefined> {
  const tenant = env.AZURE_TENANT_ID;
  const clientId = env.AZURE_CLIENT_ID;
  if (!tenant || !clientId) return undefined;
  const form: Record<string, string> = { grant_type: "client_credentials", client_id: clientId, scope: ARM_SCOPE };
  if (env.AZURE_CLIENT_SECRET) {
    form.client_secret = env.AZURE_CLIENT_SECRET;
  } else if (env.AZURE_FEDERATED_TOKEN_FILE) {
    let assertion: string;
    try {
      assertion = (await readFile(env.AZURE_FEDERATED_TOKEN_FILE, "utf8")).trim();
    } catch (e) {
      throw acrFail(registry, `cannot read AZURE_FEDERATED_TOKEN_FILE ${env.AZURE_FEDERATED_TOKEN_FILE}`, e);
    }
    form.client_assertion_type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    form.client_assertion = assertion;
  } else {
    return undefined;
  }
  const authority = (env.AZURE_AUTHORITY_HOST || DEFAULT_AUTHORITY).replace(/\/*$/, "/");
  const url = new URL(`${encodeURIComponent(tenant)}/oauth2/v2.0/token`, authority);
  const res = await requestJson({ url, form, provider: "Azure AD", timeoutMs: ctx.timeoutMs });
  return { token: stringField(res, "access_token", "Azure AD", url.host), tenant };
}

/** ACR's `/oauth2/exchange`: an Azure AD access token (and its tenant, when known) → an ACR refresh token. */
async function exchangeForRefreshToken(
  registry: string,
  accessToken: string,
  tenant: string | undefined,
  ctx: ProviderContext,
): Promise<string> {
  const scheme = isLoopbackHost(registry) ? "http" : "https";
  const url = new URL(`${scheme}://${registry}/oauth2/exchange`);
  const form: Record<string, string> = { grant_type: "access_token", service: registry };
  if (tenant) form.tenant = tenant;
  form.access_token = accessToken;
  const res = await requestJson({ url, form, provider: "ACR", timeoutMs: ctx.timeoutMs });
  return stringField(res, "refresh_token", "ACR", url.host);
}

/**
 * Azure Container Registry (`acr-env`, `acr`): an Azure AD token for the service principal in
 * `AZURE_CLIENT_ID`/`AZURE_TENANT_ID` with `AZURE_CLIENT_SECRET`, or workload identity
 * (`AZURE_FEDERATED_TOKEN_FILE`) — or the service principal of the Azure config file named by
 * `AZURE_CONTAINER_REGISTRY_CONFIG` (`--azure-container-registry-config`) — from `AZURE_AUTHORITY_HOST` (default login.microsoftonline.com).
 * When neither a secret nor a federated token file is configured: Azure managed identity (App
 * Service `IDENTITY_ENDPOINT`/`IDENTITY_HEADER`, else IMDS; `AZURE_CLIENT_ID` picks a
 * user-assigned identity). The token is exchanged at `https://<registry>/oauth2/exchange` for an
 * ACR refresh token, used as the password of user `00000000-0000-0000-0000-000000000000`. Answers
 * nothing when no identity is configured and no managed identity is reachable.
 */
export const acrProvider: CredentialProvider = {
  name: "acr",
  matches: (registry) => isAzureRegistry(registry),
  guessesIdentity: (env) => acrGuessesImds(env),
  async get(registry: string, ctx: ProviderContext): Promise<Credentials | undefined> {
    const env = { ...(await cloudConfig(registry, ctx.env.AZURE_CONTAINER_REGISTRY_CONFIG)), ...definedOnly(ctx.env) };
    if (env.AZURE_CLIENT_SECRET || env.AZURE_FEDERATED_TOKEN_FILE) {
      const aad = await aadToken(registry, env, ctx);
      if (aad === undefined) return undefined;
      return {
        username: ACR_TOKEN_USER,
        password: await exchangeForRefreshToken(registry, aad.token, aad.tenant, ctx),
      };
    }
    const token = await managedIdentityToken(registry, env, {
      clientId: env.AZURE_CLIENT_ID,
      timeoutMs: ctx.timeoutMs,
    });
    if (token === undefined) return undefined;
    return {
      username: ACR_TOKEN_USER,
      password: await exchangeForRefreshToken(registry, token, env.AZURE_TENANT_ID, ctx),
    };
  },
};
