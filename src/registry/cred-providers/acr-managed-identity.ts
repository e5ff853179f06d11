import { Agent, request } from "undici";
import { KilnError } from "../../common/errors.js";
import { oauthError, parseJsonObject, safeUrl } from "./http.js";

/** IMDS's link-local address (Azure VMs, VM scale sets, AKS nodes). */
const DEFAULT_IMDS_AUTHORITY = "http://169.254.169.254";
const IMDS_TOKEN_PATH = "/metadata/identity/oauth2/token";
const IMDS_API_VERSION = "2018-02-01";
const APP_SERVICE_API_VERSION = "2019-08-01";
/**
 * How long a TCP connect to IMDS may take. Off Azure 169.254.169.254 is usually unroutable, and a
 * build must not wait the provider's full timeout for it (Azure's identity libraries probe with ~1 s).
 */
const IMDS_CONNECT_TIMEOUT_MS = 1000;

/** The Azure Resource Manager audience of a registry's cloud (the token `/oauth2/exchange` accepts). */
export function armResource(registry: string): string {
  const host = registry.replace(/:\d+$/, "").toLowerCase();
  if (host.endsWith(".azurecr.cn")) return "https://management.chinacloudapi.cn/";
  if (host.endsWith(".azurecr.us")) return "https://management.usgovcloudapi.net/";
  if (host.endsWith(".azurecr.de")) return "https://management.microsoftazure.de/";
  return "https://management.azure.com/";
}

/** Which managed-identity endpoint the environment points at. */
type ManagedIdentityEndpoint =
  | { kind: "app-service"; url: URL; headers: Record<string, string>; label: string }
  | { kind: "imds"; url: URL; headers: Record<string, string>; label: string };

/** A `CREDENTIAL_PROVIDER_FAILED` error in the words of the ACR provider. */
export function acrFail(registry: string, message: string, cause?: unknown): KilnError {
  return new KilnError(
    "CREDENTIAL_PROVIDER_FAILED",
    `ACR credentials for ${registry}: ${message}`,
    cause ? { cause } : undefined,
  );
}

/** True for an ARM resource ID of a user-assigned identity (rather than its client ID). */
function isResourceId(id: string): boolean {
  return id.toLowerCase().startsWith("/subscriptions/");
}

function parseEndpointUrl(registry: string, value: string, variable: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw acrFail(registry, `${variable} is not a URL; unset it or set an http:// or https:// URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw acrFail(registry, `${variable} must be an http:// or https:// URL (it is ${url.protocol})`);
  }
  return url;
}

/**
 * The managed-identity token request for `resource`, as Azure's identity libraries choose it:
 * App Service / Container Apps / Functions when `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are set
 * (api-version 2019-08-01, `X-IDENTITY-HEADER`), else IMDS (api-version 2018-02-01, `Metadata:
 * true`) at `AZURE_POD_IDENTITY_AUTHORITY_HOST` (default `http://169.254.169.254`). A user-assigned
 * identity is chosen by `clientId` (`client_id=`; an ARM resource ID `/subscriptions/…` — as AKS's
 * azure.json `userAssignedIdentityID` may hold — goes as `msi_res_id=`, App Service `mi_res_id=`). Azure Arc and Service Fabric identities are not
 * supported and say so.
 */
function managedIdentityEndpoint(
  registry: string,
  env: Record<string, string | undefined>,
  resource: string,
  clientId: string | undefined,
): ManagedIdentityEndpoint {
  const identityEndpoint = env.IDENTITY_ENDPOINT;
  if (identityEndpoint && env.IDENTITY_HEADER && env.IDENTITY_SERVER_THUMBPRINT) {
    throw acrFail(
      registry,
      "Azure managed identity: Service Fabric managed identity (IDENTITY_SERVER_THUMBPRINT) is not supported; use a service principal (AZURE_CLIENT_SECRET) or workload identity (AZURE_FEDERATED_TOKEN_FILE)",
    );
  }
  if (identityEndpoint && env.IDENTITY_HEADER) {
    const url = parseEndpointUrl(registry, identityEndpoint, "IDENTITY_ENDPOINT");
    url.searchParams.set("api-version", APP_SERVICE_API_VERSION);
    url.searchParams.set("resource", resource);
    if (clientId) url.searchParams.set(isResourceId(clientId) ? "mi_res_id" : "client_id", clientId);
    return {
      kind: "app-service",
      url,
      headers: { "x-identity-header": env.IDENTITY_HEADER },
      label: `App Service identity endpoint ${url.host}`,
    };
  }
  if (identityEndpoint && env.IMDS_ENDPOINT) {
    throw acrFail(
      registry,
      "Azure managed identity: Azure Arc managed identity (IDENTITY_ENDPOINT with IMDS_ENDPOINT) is not supported; use a service principal (AZURE_CLIENT_SECRET) or workload identity (AZURE_FEDERATED_TOKEN_FILE)",
    );
  }
  const authority = (env.AZURE_POD_IDENTITY_AUTHORITY_HOST || DEFAULT_IMDS_AUTHORITY).replace(/\/+$/, "");
  const url = parseEndpointUrl(registry, `${authority}${IMDS_TOKEN_PATH}`, "AZURE_POD_IDENTITY_AUTHORITY_HOST");
  url.searchParams.set("api-version", IMDS_API_VERSION);
  url.searchParams.set("resource", resource);
  if (clientId) url.searchParams.set(isResourceId(clientId) ? "msi_res_id" : "client_id", clientId);
  return { kind: "imds", url, headers: { metadata: "true" }, label: `IMDS ${url.host}` };
}

/** Options of {@link managedIdentityToken}. */
export interface ManagedIdentityOptions {
  /** Client ID of a user-assigned identity (`AZURE_CLIENT_ID`); undefined = the system-assigned one. */
  clientId?: string;
  /** Give up on the response after this many milliseconds. */
  timeoutMs: number;
}

/** Statuses after which Azure's identity libraries ask IMDS again (VM starting: 410; throttled: 429; 5xx). */
const RETRY_STATUSES: ReadonlySet<number> = new Set([410, 429, 500, 502, 503, 504]);
/** At most this many requests per token; waits double from {@link RETRY_BASE_MS} (or `Retry-After`, capped). */
const MAX_ATTEMPTS = 3;
const RETRY_BASE_MS = 500;
const RETRY_MAX_MS = 5000;

interface Answer {
  status: number;
  text: string;
  retryAfterMs: number | undefined;
}

function retryAfterMs(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || !/^\d+$/.test(v.trim())) return undefined;
  return Number(v.trim()) * 1000;
}

async function ask(ep: ManagedIdentityEndpoint, agent: Agent, timeoutMs: number): Promise<Answer> {
  const res = await request(ep.url, {
    method: "GET",
    headers: { accept: "application/json", ...ep.headers },
    dispatcher: agent,
    signal: AbortSignal.timeout(timeoutMs),
  });
  return {
    status: res.statusCode,
    text: await res.body.text(),
    retryAfterMs: retryAfterMs(res.headers["retry-after"]),
  };
}

/**
 * An Azure AD access token for the registry's ARM audience from the managed-identity endpoint
 * ({@link managedIdentityEndpoint}). Answers undefined when IMDS is absent — it cannot be reached
 * (connect timeout {@link IMDS_CONNECT_TIMEOUT_MS}, refused, no answer in time) or what answers is
 * not IMDS (no JSON) — so that off Azure the caller reports "no credentials". 410, 429 and 5xx
 * answers are retried (3 requests at most). Throws a `KilnError` naming Azure managed identity,
 * the endpoint host and the HTTP status when the endpoint refuses (e.g. no identity assigned); an
 * App Service endpoint, set by the platform, always counts as present. No token, header secret or
 * query ever appears in a message.
 */
export async function managedIdentityToken(
  registry: string,
  env: Record<string, string | undefined>,
  opts: ManagedIdentityOptions,
): Promise<string | undefined> {
  const ep = managedIdentityEndpoint(registry, env, armResource(registry), opts.clientId);
  const where = `Azure managed identity (${ep.label})`;
  const guessing = ep.kind === "imds";
  // IMDS gets a short connect timeout; an App Service endpoint is local and set by the platform.
  const agent = new Agent(guessing ? { connect: { timeout: IMDS_CONNECT_TIMEOUT_MS } } : {});
  let answer: Answer;
  try {
    for (let attempt = 1; ; attempt++) {
      answer = await ask(ep, agent, opts.timeoutMs);
      if (!RETRY_STATUSES.has(answer.status) || attempt >= MAX_ATTEMPTS) break;
      const wait = Math.min(answer.retryAfterMs ?? RETRY_BASE_MS * 2 ** (attempt - 1), RETRY_MAX_MS);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  } catch (e) {
    if (guessing) return undefined;
    throw acrFail(registry, `${where}: cannot reach ${safeUrl(ep.url)}: ${(e as Error).message}`, e);
  } finally {
    void agent.close().catch(() => undefined);
  }
  const { status, text } = answer;
  const body = parseJsonObject(text);
  if (status < 200 || status >= 300) {
    // Another cloud's metadata server (or a proxy) at the link-local address: not Azure.
    if (guessing && (body === undefined || typeof body.error !== "string")) return undefined;
    const hint = RETRY_STATUSES.has(status)
      ? ` ${MAX_ATTEMPTS} times; the managed-identity endpoint is unavailable or throttled, try again later`
      : "; assign a managed identity to this VM, node pool or app (a user-assigned one needs AZURE_CLIENT_ID = its client ID), or set AZURE_CLIENT_ID and AZURE_TENANT_ID with AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE";
    throw acrFail(registry, `${where} answered HTTP ${status}${oauthError(text)}${hint}`);
  }
  if (body === undefined) {
    if (guessing) return undefined;
    throw acrFail(registry, `${where}: ${safeUrl(ep.url)} did not answer a JSON object`);
  }
  const token = body.access_token;
  if (typeof token !== "string" || token === "") {
    throw acrFail(registry, `${where}: the answer of ${ep.url.host} has no "access_token"`);
  }
  return token;
}

/**
 * True when nothing Azure-specific is configured (no client secret, no federated token file, no
 * azure.json, no App Service identity endpoint): asking IMDS for a token is then only a guess, and the
 * automatic per-host lookup treats its failure (e.g. a VM without an identity answering 400) as
 * "no identity here", so public repositories stay pullable anonymously.
 */
export function acrGuessesImds(env: Record<string, string | undefined>): boolean {
  return (
    !env.AZURE_CLIENT_SECRET &&
    !env.AZURE_FEDERATED_TOKEN_FILE &&
    !env.AZURE_CONTAINER_REGISTRY_CONFIG &&
    !(env.IDENTITY_ENDPOINT && env.IDENTITY_HEADER)
  );
}
