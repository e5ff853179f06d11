import { KilnError } from "../../common/errors.js";
import { envAccessKeys, tokenCredentials } from "./aws-token.js";
import type { Credentials } from "../credentials.js";
import { ecrPublicCredentials, isEcrPublicHost } from "./ecr-public.js";
import type { CredentialProvider, ProviderContext } from "./types.js";

// amazon-ecr-credential-helper's host pattern: <account>.dkr.ecr[-fips].<region>.<partition domain>,
// and the dual-stack names <account>.dkr-ecr[-fips].<region>.on.aws (.on.amazonwebservices.com.cn in China).
const ECR_HOST =
  /^(\d{12})\.dkr[.-]ecr(-fips)?\.([a-zA-Z0-9][a-zA-Z0-9-_]*)\.(amazonaws\.com(\.cn)?|amazonaws\.eu|on\.aws|on\.amazonwebservices\.com\.cn|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$/;

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
 * `public.ecr.aws` goes to ECR Public instead ({@link ecrPublicCredentials}), as in ecr-login.
 * The SDK is loaded on first use only, so builds that never talk to ECR do not pay for it.
 */
export const ecrProvider: CredentialProvider = {
  name: "ecr",
  matches: (registry) => parseEcrHost(registry) !== undefined || isEcrPublicHost(registry),
  servesAnonymously: (registry) => isEcrPublicHost(registry),
  async get(registry: string, ctx: ProviderContext): Promise<Credentials | undefined> {
    if (isEcrPublicHost(registry)) return ecrPublicCredentials(registry, ctx);
    const { env } = ctx;
    const host = parseEcrHost(registry);
    const region = awsRegion(registry, env);
    const endpoint = env.AWS_ENDPOINT_URL_ECR || env.AWS_ENDPOINT_URL;
    const keys = envAccessKeys(env);
    const where = `ECR credentials for ${registry} (region ${region})`;
    const { getEcrAuthorizationToken } = await import("./ecr-client.js");
    const call = () =>
      getEcrAuthorizationToken({
        region,
        ...(endpoint ? { endpoint } : {}),
        fips: host?.fips === true,
        ...(keys ? { credentials: keys } : {}),
        ...(host !== undefined ? { registryIds: [host.account] } : {}),
        timeoutMs: ctx.timeoutMs,
      });
    const hint = "check the AWS credentials (env, ~/.aws, IRSA) and the ecr:GetAuthorizationToken permission";
    return tokenCredentials({ where, call, hint }, env);
  },
};
