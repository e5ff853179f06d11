import { ECRClient, GetAuthorizationTokenCommand } from "@aws-sdk/client-ecr";
import type { AwsCredentials } from "./aws-token.js";

/** Settings of one `GetAuthorizationToken` call. */
export interface EcrTokenRequest {
  region: string;
  endpoint?: string;
  fips: boolean;
  credentials?: AwsCredentials;
  registryIds?: string[];
  timeoutMs: number;
}

/**
 * Calls ECR's `GetAuthorizationToken` and returns the base64 `user:password` token, or undefined
 * when the answer has none. This module holds the AWS SDK import; it is loaded with a dynamic
 * `import()` so that only builds that talk to ECR load the SDK (and the bundle keeps it in a chunk).
 */
export async function getEcrAuthorizationToken(r: EcrTokenRequest): Promise<string | undefined> {
  const client = new ECRClient({
    region: r.region,
    ...(r.endpoint !== undefined ? { endpoint: r.endpoint } : {}),
    ...(r.fips ? { useFipsEndpoint: true } : {}),
    ...(r.credentials !== undefined ? { credentials: r.credentials } : {}),
    maxAttempts: 3,
  });
  try {
    const out = await client.send(
      new GetAuthorizationTokenCommand(r.registryIds !== undefined ? { registryIds: r.registryIds } : {}),
      { abortSignal: AbortSignal.timeout(r.timeoutMs) },
    );
    return out.authorizationData?.[0]?.authorizationToken;
  } finally {
    client.destroy();
  }
}
