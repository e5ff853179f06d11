import { KilnError } from "../../common/errors.js";
import type { Credentials } from "../credentials.js";

/** AWS credentials: an access key, its secret and, for temporary credentials, a session token. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Access keys from the environment, when both are set (else the SDK's default chain decides). */
export function envAccessKeys(env: Record<string, string | undefined>): AwsCredentials | undefined {
  if (!env.AWS_ACCESS_KEY_ID || !env.AWS_SECRET_ACCESS_KEY) return undefined;
  return {
    accessKeyId: env.AWS_ACCESS_KEY_ID,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
    ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
  };
}

/**
 * The first line of `text`, cut to 240 characters, with the environment's AWS secrets and anything
 * signature-like masked: AWS JSON services quote the signed request (session token included) in
 * `InvalidSignatureException`.
 */
function redactAws(text: string, env: Record<string, string | undefined>): string {
  let out = text.split("\n")[0] ?? "";
  for (const secret of [env.AWS_SECRET_ACCESS_KEY, env.AWS_SESSION_TOKEN]) {
    if (secret !== undefined && secret.length >= 8) out = out.split(secret).join("***");
  }
  out = out.replace(/(x-amz-security-token|Signature|Credential)[=:]\S+/gi, "$1=***");
  return out.length > 240 ? `${out.slice(0, 240)}…` : out;
}

/**
 * What a failed AWS SDK call says, safe to show: HTTP status, AWS error code, first line of the
 * message (masked). Callers must not keep the SDK error as a cause: its message may quote the
 * signed request.
 */
export function describeAwsFailure(e: unknown, env: Record<string, string | undefined>): string {
  const err = e as { name?: unknown; message?: unknown; $metadata?: { httpStatusCode?: unknown } };
  const status = typeof err.$metadata?.httpStatusCode === "number" ? err.$metadata.httpStatusCode : undefined;
  const name = typeof err.name === "string" && /^[A-Za-z0-9_.]{1,80}$/.test(err.name) ? err.name : "Error";
  const message = redactAws(typeof err.message === "string" ? err.message : String(e), env);
  return status !== undefined ? `answered HTTP ${status} ${name}: ${message}` : `failed: ${name}: ${message}`;
}

/** An ECR authorization token (base64 `user:password`) as registry credentials; `where` starts the errors. */
export function decodeAuthorizationToken(token: string | undefined, where: string): Credentials {
  if (token === undefined || token === "") {
    throw new KilnError("CREDENTIAL_PROVIDER_FAILED", `${where}: GetAuthorizationToken answered no authorization data`);
  }
  const decoded = Buffer.from(token, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon <= 0) {
    throw new KilnError(
      "CREDENTIAL_PROVIDER_FAILED",
      `${where}: the authorization token is not base64 of "user:password"`,
    );
  }
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** How {@link tokenCredentials} calls one ECR `GetAuthorizationToken` and words its failure. */
export interface TokenCall {
  /** Starts the errors, e.g. "ECR credentials for <host> (region <r>)". */
  where: string;
  /** The call itself (an AWS SDK client, loaded on first use), answering the token. */
  call: () => Promise<string | undefined>;
  /** What to check, appended to a failure. */
  hint: string;
  /** A failure that means "no AWS identity": the answer is then undefined (anonymous). */
  absent?: (e: unknown) => boolean;
}

/**
 * Registry credentials from an ECR (or ECR Public) `GetAuthorizationToken` call. A failed call becomes a
 * CREDENTIAL_PROVIDER_FAILED KilnError naming `where`, the HTTP status and AWS error code; the SDK error is
 * not kept as its cause, since its message may quote the signed request.
 */
export async function tokenCredentials(
  t: TokenCall,
  env: Record<string, string | undefined>,
): Promise<Credentials | undefined> {
  let token: string | undefined;
  try {
    token = await t.call();
  } catch (e) {
    if (t.absent?.(e) === true) return undefined;
    throw new KilnError(
      "CREDENTIAL_PROVIDER_FAILED",
      `${t.where}: GetAuthorizationToken ${describeAwsFailure(e, env)}; ${t.hint}`,
    );
  }
  return decodeAuthorizationToken(token, t.where);
}
