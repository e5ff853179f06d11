import { ECRPUBLICClient, GetAuthorizationTokenCommand } from "@aws-sdk/client-ecr-public";
import type { AwsCredentials } from "./aws-token.js";

/** Settings of one ECR Public `GetAuthorizationToken` call. */
export interface EcrPublicTokenRequest {
  region: string;
  endpoint?: string;
  credentials?: AwsCredentials;
  timeoutMs: number;
}

/**
 * Calls ECR Public's `GetAuthorizationToken` (JSON 1.1 API, SigV4 service `ecr-public`) and returns
 * the base64 `user:password` token, or undefined when the answer has none. This module holds the
 * `@aws-sdk/client-ecr-public` import; it is loaded with a dynamic `import()` so that only builds
 * that authenticate to ECR Public load the SDK (and the bundle keeps it in a chunk).
 */
export async function getEcrPublicAuthorizationToken(r: EcrPublicTokenRequest): Promise<string | undefined> {
  const client = new ECRPUBLICClient({
    region: r.region,
    ...(r.endpoint !== undefined ? { endpoint: r.endpoint } : {}),
    ...(r.credentials !== undefined ? { credentials: r.credentials } : {}),
    maxAttempts: 3,
  });
  try {
    const out = await client.send(new GetAuthorizationTokenCommand({}), {
      abortSignal: AbortSignal.timeout(r.timeoutMs),
    });
    return out.authorizationData?.authorizationToken;
  } finally {
    client.destroy();
  }
}
