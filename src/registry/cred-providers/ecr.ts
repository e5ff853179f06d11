import { KilnError } from "../../common/errors.js";
import type { Credentials } from "../credentials.js";
import type { CredentialProvider, ProviderContext } from "./types.js";

// amazon-ecr-credential-helper's host pattern: <account>.dkr.ecr[-fips].<region>.<partition domain>.
const ECR_HOST =
  /^(\d{12})\.dkr\.ecr(-fips)?\.([a-zA-Z0-9][a-zA-Z0-9-_]*)\.(amazonaws\.com(\.cn)?|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$/;

/** Account, region and FIPS flag of a private ECR registry host, or undefined for other hosts. */
export function parseEcrHost(registry: string): { account: string; region: string; fips: boolean } | undefined {
  const m = ECR_HOST.exec(registry);
  if (m === null) return undefined;
  return { account: m[1] ?? "", region: m[3] ?? "", fips: m[2] !== undefined };
}

function awsRegion(registry: string, env: Record<string, string | undefined>): string {
  const fromHost = parseEcrHost(registry)?.region;
  const region = fromHost ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION);
  if (!region) {
    throw new KilnError(
      "CREDENTIAL_PROVIDER_FAILED",
      `ECR credentials for ${registry}: cannot tell the AWS region from the host name; set AWS_REGION`,
    );
  }
  return region;
}

/**
 * Amazon ECR (`ecr-login`): `GetAuthorizationToken` with the AWS SDK's default credential chain
 * (env keys, shared config/credentials files, IRSA web identity, ECS/EC2 roles), region from the
 * registry host (`<acct>.dkr.ecr.<region>.amazonaws.com`, else `AWS_REGION`), endpoint override
 * from `AWS_ENDPOINT_URL_ECR` / `AWS_ENDPOINT_URL`. The token decodes to `AWS:<password>`.
 * The SDK is loaded on first use only, so builds that never talk to ECR do not pay for it.
 */
export const ecrProvider: CredentialProvider = {
  name: "ecr",
  matches: (registry) => parseEcrHost(registry) !== undefined,
  async get(registry: string, ctx: ProviderContext): Promise<Credentials | undefined> {
    const { env } = ctx;
    const host = parseEcrHost(registry);
    const region = awsRegion(registry, env);
    const endpoint = env.AWS_ENDPOINT_URL_ECR || env.AWS_ENDPOINT_URL;
    const { getEcrAuthorizationToken } = await import("./ecr-client.js");
    let token: string | undefined;
    try {
      token = await getEcrAuthorizationToken({
        region,
        ...(endpoint ? { endpoint } : {}),
        fips: host?.fips === true,
        ...(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
          ? {
              credentials: {
                accessKeyId: env.AWS_ACCESS_KEY_ID,
                secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
                ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
              },
            }
          : {}),
        ...(host !== undefined ? { registryIds: [host.account] } : {}),
        timeoutMs: ctx.timeoutMs,
      });
    } catch (e) {
      const err = e as { name?: string; message?: string };
      throw new KilnError(
        "CREDENTIAL_PROVIDER_FAILED",
        `ECR credentials for ${registry} (region ${region}): GetAuthorizationToken failed: ${err.name ?? "Error"}: ${err.message ?? String(e)}; check the AWS credentials (env, ~/.aws, IRSA) and the ecr:GetAuthorizationToken permission`,
        { cause: e },
      );
    }
    if (token === undefined || token === "") {
      throw new KilnError(
        "CREDENTIAL_PROVIDER_FAILED",
        `ECR credentials for ${registry}: GetAuthorizationToken answered no authorization data`,
      );
    }
    const decoded = Buffer.from(token, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon <= 0) {
      throw new KilnError(
        "CREDENTIAL_PROVIDER_FAILED",
        `ECR credentials for ${registry}: the authorization token is not base64 of "user:password"`,
      );
    }
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  },
};
