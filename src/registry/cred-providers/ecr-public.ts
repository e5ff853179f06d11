import { KilnError } from "../../common/errors.js";
import type { Credentials } from "../credentials.js";
import { envAccessKeys, tokenCredentials } from "./aws-token.js";
import { awsIdentityVisible } from "./ecr-public-identity.js";
import { isLoopbackHost, safeUrl } from "./http.js";
import type { ProviderContext } from "./types.js";

/** The one host name of Amazon ECR Public (amazon-ecr-credential-helper knows no other). */
const ECR_PUBLIC_HOST = "public.ecr.aws";

/** ECR Public's API (and so its `GetAuthorizationToken`) exists only in us-east-1, whatever AWS_REGION says. */
const ECR_PUBLIC_REGION = "us-east-1";

/**
 * True for Amazon ECR Public's registry `public.ecr.aws` (any port, any case), the way
 * docker-credential-ecr-login recognises it: by the exact host name, no FIPS or dual-stack variants.
 */
export function isEcrPublicHost(registry: string): boolean {
  return registry.toLowerCase().replace(/:\d+$/, "") === ECR_PUBLIC_HOST;
}

/**
 * The endpoint override (`AWS_ENDPOINT_URL_ECR_PUBLIC`, else `AWS_ENDPOINT_URL`), if any. Plain
 * HTTP is refused except on loopback: the signed request and the answered registry password would
 * cross the network in clear.
 */
export function ecrPublicEndpoint(env: Record<string, string | undefined>): string | undefined {
  const name = env.AWS_ENDPOINT_URL_ECR_PUBLIC ? "AWS_ENDPOINT_URL_ECR_PUBLIC" : "AWS_ENDPOINT_URL";
  const value = env[name];
  if (!value) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new KilnError("CREDENTIAL_PROVIDER_FAILED", `ECR Public credentials: ${name} is not a URL`);
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && isLoopbackHost(url.host))) {
    throw new KilnError(
      "CREDENTIAL_PROVIDER_FAILED",
      `ECR Public credentials: ${name}=${safeUrl(url)} is not https; the signed request and the registry password would travel in clear (plain HTTP is accepted on loopback only)`,
    );
  }
  return value;
}

/**
 * ECR Public credentials (docker-credential-ecr-login's behaviour for `public.ecr.aws`): ECR Public's
 * `GetAuthorizationToken` in us-east-1 with the AWS default credential chain, endpoint override
 * `AWS_ENDPOINT_URL_ECR_PUBLIC` / `AWS_ENDPOINT_URL` (the AWS SDK's names). Answers undefined —
 * anonymous, which is how public images are pulled — when no AWS identity exists; throws a
 * `CREDENTIAL_PROVIDER_FAILED` KilnError (ECR Public, us-east-1, HTTP status and AWS error code,
 * never a secret) when an identity exists but the token cannot be had.
 */
export async function ecrPublicCredentials(registry: string, ctx: ProviderContext): Promise<Credentials | undefined> {
  const { env } = ctx;
  if (!(await awsIdentityVisible(env))) return undefined;
  const endpoint = ecrPublicEndpoint(env);
  const where = `ECR Public credentials for ${registry} (region ${ECR_PUBLIC_REGION})`;
  const keys = envAccessKeys(env);
  const { getEcrPublicAuthorizationToken } = await import("./ecr-public-client.js");
  const call = () =>
    getEcrPublicAuthorizationToken({
      region: ECR_PUBLIC_REGION,
      ...(endpoint ? { endpoint } : {}),
      ...(keys ? { credentials: keys } : {}),
      timeoutMs: ctx.timeoutMs,
    });
  const hint =
    "check the AWS credentials (env, ~/.aws, IRSA, instance role) and that the identity may call ecr-public:GetAuthorizationToken and sts:GetServiceBearerToken";
  // The default chain may find no identity after all (e.g. an EC2 instance without a role): anonymous.
  const absent = (e: unknown): boolean => (e as { name?: unknown }).name === "CredentialsProviderError";
  return tokenCredentials({ where, call, hint, absent }, env);
}
