import { googleFail, requiredString } from "./google-errors.js";
import { isLoopbackHost } from "./http.js";

/** Google's STS token endpoint, used when an external_account file names no `token_url`. */
const DEFAULT_STS_URL = "https://sts.googleapis.com/v1/token";
const DEFAULT_LIFETIME_SECONDS = 3600;

/** How a subject token is read from a file or an HTTP answer. */
export type SubjectTokenFormat = { type: "text" } | { type: "json"; field: string };

/** Where the external identity's token (OIDC ID token, SAML assertion, …) comes from. */
export type SubjectTokenSource =
  | { kind: "file"; file: string; format: SubjectTokenFormat }
  | { kind: "url"; url: URL; headers: Record<string, string>; format: SubjectTokenFormat }
  | ExecutableSource
  | AwsSource;

/** `credential_source` with `environment_id: "aws1"`: a signed AWS GetCallerIdentity request. */
export interface AwsSource {
  kind: "aws";
  /** `regional_cred_verification_url`, `{region}` not yet substituted. */
  verificationUrl: string;
  /** `region_url`: the instance metadata's availability zone (when AWS_REGION is unset). */
  regionUrl?: URL;
  /** `url`: instance metadata security credentials (when the AWS_* keys are unset). */
  credentialsUrl?: URL;
  /** `imdsv2_session_token_url`: IMDSv2 session token endpoint. */
  imdsv2TokenUrl?: URL;
  /** The workload identity pool provider, signed as `x-goog-cloud-target-resource`. */
  audience: string;
}

/** `credential_source.executable` (AIP-4117 executable-sourced credentials). */
export interface ExecutableSource {
  kind: "executable";
  /** `command` split at whitespace: the program and its arguments (no shell). */
  argv: string[];
  /** `timeout_millis`: 5000–120000, default 30000. */
  timeoutMs: number;
  /** `output_file`: where the executable caches its response, read before running it. */
  outputFile?: string;
  /** The `GOOGLE_EXTERNAL_ACCOUNT_*` variables the executable receives. */
  env: Record<string, string>;
}

/** An `"type": "external_account"` credentials file (AIP-4117), checked and normalised. */
export interface ExternalAccountConfig {
  /** The credentials file, for messages. */
  file: string;
  /** The workload or workforce identity pool provider, `//iam.googleapis.com/…`. */
  audience: string;
  /** e.g. `urn:ietf:params:oauth:token-type:jwt`. */
  subjectTokenType: string;
  /** The STS token exchange endpoint. */
  tokenUrl: URL;
  /** IAM Credentials `generateAccessToken` URL of the service account to impersonate, if any. */
  impersonationUrl?: URL;
  /** Lifetime requested for the impersonated token. */
  tokenLifetimeSeconds: number;
  /** Workforce pools only: the project billed for the exchange (sent as STS `options.userProject`). */
  workforcePoolUserProject?: string;
  /** OAuth client authenticating the STS exchange (HTTP Basic), when the file has one. */
  client?: { id: string; secret: string };
  source: SubjectTokenSource;
}

const LABEL = "[a-z0-9](?:[a-z0-9-]*[a-z0-9])?";

/**
 * Hosts Google's auth libraries accepted for `token_url` / `service_account_impersonation_url`
 * while they validated them (global, regional, mTLS, Private Service Connect), plus the regional
 * endpoints `<service>.<region>.rep.googleapis.com`.
 */
function googleHostPattern(service: "sts" | "iamcredentials"): RegExp {
  return new RegExp(
    `^(?:${service}|${LABEL}\\.${service}|${service}\\.${LABEL}|${LABEL}-${service}|${service}\\.${LABEL}\\.rep|${service}-${LABEL}\\.p)(?:\\.mtls)?\\.googleapis\\.com$`,
  );
}

const STS_HOST = googleHostPattern("sts");
const IAM_HOST = googleHostPattern("iamcredentials");

/** Link-local metadata services that only speak plain HTTP (Azure IMDS, AWS IMDS over IPv6). */
function isMetadataHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "");
  return /^169\.254\.\d{1,3}\.\d{1,3}$/.test(h) || h === "fd00:ec2::254" || h === "metadata.google.internal";
}

function parseUrl(value: string, field: string, file: string): URL {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw googleFail(`${file}: "${field}" is not a URL`);
  }
  if (u.username !== "" || u.password !== "") throw googleFail(`${file}: "${field}" must not carry credentials`);
  return u;
}

/**
 * Checks a `token_url` (`sts`) or `service_account_impersonation_url` (`iamcredentials`): https on
 * a Google host of that service, or http(s) on loopback. Anything else is refused before any
 * request, naming the field and the host.
 */
export function checkGoogleUrl(value: string, field: string, service: "sts" | "iamcredentials", file: string): URL {
  const u = parseUrl(value, field, file);
  const host = u.hostname.toLowerCase();
  const loopback = isLoopbackHost(host);
  if ((u.protocol === "http:" || u.protocol === "https:") && loopback) return u;
  const pattern = service === "sts" ? STS_HOST : IAM_HOST;
  if (u.protocol === "https:" && pattern.test(host)) return u;
  const expected =
    service === "sts"
      ? "sts.googleapis.com, sts.<region>.rep.googleapis.com or a sts-<endpoint>.p.googleapis.com Private Service Connect endpoint"
      : "iamcredentials.googleapis.com, iamcredentials.<region>.rep.googleapis.com or a iamcredentials-<endpoint>.p.googleapis.com Private Service Connect endpoint";
  throw googleFail(
    `${file}: "${field}" names ${u.protocol}//${u.host}, which is not a Google ${service === "sts" ? "STS" : "IAM Credentials"} endpoint; kiln sends the external token only to https://${expected} (regenerate the file with gcloud iam workload-identity-pools create-cred-config)`,
  );
}

/** `credential_source.url`: https anywhere; plain http only on loopback or a link-local metadata service. */
function checkSourceUrl(value: string, file: string): URL {
  const u = parseUrl(value, "credential_source.url", file);
  if (u.protocol === "https:") return u;
  if (u.protocol === "http:" && (isLoopbackHost(u.hostname) || isMetadataHost(u.hostname))) return u;
  throw googleFail(
    `${file}: "credential_source.url" (${u.protocol}//${u.host}) must be https (plain http only for loopback or a link-local metadata service such as 169.254.169.254)`,
  );
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function optionalString(j: Record<string, unknown>, name: string, file: string, prefix = ""): string | undefined {
  const v = j[name];
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") throw googleFail(`${file}: "${prefix}${name}" must be a string`);
  return v;
}

function parseFormat(src: Record<string, unknown>, file: string): SubjectTokenFormat {
  const f = src.format;
  if (f === undefined || f === null) return { type: "text" };
  const fo = obj(f);
  if (fo === undefined) throw googleFail(`${file}: "credential_source.format" must be an object`);
  const type = optionalString(fo, "type", file, "credential_source.format.") ?? "text";
  if (type === "text") return { type: "text" };
  if (type === "json") {
    return {
      type: "json",
      field: requiredString(fo, "subject_token_field_name", file, "credential_source.format."),
    };
  }
  throw googleFail(`${file}: "credential_source.format.type" is ${JSON.stringify(type)}; expected "text" or "json"`);
}

function parseHeaders(src: Record<string, unknown>, file: string): Record<string, string> {
  const h = src.headers;
  if (h === undefined || h === null) return {};
  const ho = obj(h);
  if (ho === undefined) throw googleFail(`${file}: "credential_source.headers" must be an object`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(ho)) {
    if (typeof v !== "string") throw googleFail(`${file}: "credential_source.headers.${k}" must be a string`);
    out[k.toLowerCase()] = v;
  }
  return out;
}

function parseSource(j: Record<string, unknown>, file: string): SubjectTokenSource {
  const src = obj(j.credential_source);
  if (src === undefined) throw googleFail(`${file} has no "credential_source" object`);
  if (src.environment_id !== undefined) return parseAws(src, j, file);
  if (src.certificate !== undefined) {
    throw googleFail(
      `${file} (external_account) uses an X.509 certificate source (mTLS workload identity federation); kiln supports file-, URL-, executable- and AWS-sourced subject tokens ("credential_source.file", "url", "executable" or "environment_id"); use one of those, or an access token in config.json`,
    );
  }
  if (src.executable !== undefined) return parseExecutable(src.executable, j, file);
  const fileSrc = optionalString(src, "file", file, "credential_source.");
  const urlSrc = optionalString(src, "url", file, "credential_source.");
  if (fileSrc !== undefined && urlSrc !== undefined) {
    throw googleFail(`${file}: "credential_source" names both "file" and "url"; keep one`);
  }
  const format = parseFormat(src, file);
  if (fileSrc !== undefined) return { kind: "file", file: fileSrc, format };
  if (urlSrc !== undefined) {
    return { kind: "url", url: checkSourceUrl(urlSrc, file), headers: parseHeaders(src, file), format };
  }
  throw googleFail(`${file}: "credential_source" has neither "file" nor "url"`);
}

/** AWS metadata URLs: the instance metadata service (IPv4 or IPv6), or loopback (tests, proxies). */
function checkAwsMetadataUrl(src: Record<string, unknown>, name: string, file: string): URL | undefined {
  const v = optionalString(src, name, file, "credential_source.");
  if (v === undefined) return undefined;
  const u = parseUrl(v, `credential_source.${name}`, file);
  const h = u.hostname.replace(/^\[|\]$/g, "");
  if (
    (u.protocol === "http:" || u.protocol === "https:") &&
    (h === "169.254.169.254" || h === "fd00:ec2::254" || isLoopbackHost(h))
  ) {
    return u;
  }
  throw googleFail(
    `${file}: "credential_source.${name}" names ${u.protocol}//${u.host}; AWS metadata URLs must be on 169.254.169.254 or [fd00:ec2::254]`,
  );
}

function parseAws(src: Record<string, unknown>, j: Record<string, unknown>, file: string): AwsSource {
  const id = src.environment_id;
  const m = typeof id === "string" ? /^aws(\d+)$/.exec(id) : null;
  if (m === null || m[1] !== "1") {
    throw googleFail(
      `${file}: "credential_source.environment_id" is ${JSON.stringify(id)}; kiln supports "aws1" (and file, url or executable sources)`,
    );
  }
  const verificationUrl = requiredString(src, "regional_cred_verification_url", file, "credential_source.");
  const regionUrl = checkAwsMetadataUrl(src, "region_url", file);
  const credentialsUrl = checkAwsMetadataUrl(src, "url", file);
  const imdsv2TokenUrl = checkAwsMetadataUrl(src, "imdsv2_session_token_url", file);
  return {
    kind: "aws",
    verificationUrl,
    ...(regionUrl !== undefined ? { regionUrl } : {}),
    ...(credentialsUrl !== undefined ? { credentialsUrl } : {}),
    ...(imdsv2TokenUrl !== undefined ? { imdsv2TokenUrl } : {}),
    audience: requiredString(j, "audience", file),
  };
}

const IMPERSONATED_EMAIL = /\/serviceAccounts\/([^/]+@[^/]+):generateAccessToken$/;

function parseExecutable(v: unknown, j: Record<string, unknown>, file: string): ExecutableSource {
  const e = obj(v);
  if (e === undefined) throw googleFail(`${file}: "credential_source.executable" must be an object`);
  const prefix = "credential_source.executable.";
  const argv = requiredString(e, "command", file, prefix)
    .split(/\s+/)
    .filter((a) => a !== "");
  if (argv.length === 0) throw googleFail(`${file} has no "${prefix}command"`);
  const t = e.timeout_millis;
  let timeoutMs = 30_000;
  if (t !== undefined && t !== null) {
    if (typeof t !== "number" || !Number.isInteger(t) || t < 5000 || t > 120_000) {
      throw googleFail(`${file}: "${prefix}timeout_millis" must be a whole number from 5000 to 120000`);
    }
    timeoutMs = t;
  }
  const outputFile = optionalString(e, "output_file", file, prefix);
  const env: Record<string, string> = {
    GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: requiredString(j, "audience", file),
    GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE: requiredString(j, "subject_token_type", file),
    GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE: "0",
  };
  const imp = optionalString(j, "service_account_impersonation_url", file);
  const email = imp === undefined ? undefined : IMPERSONATED_EMAIL.exec(decodeURIComponent(imp))?.[1];
  if (email !== undefined) env.GOOGLE_EXTERNAL_ACCOUNT_IMPERSONATED_EMAIL = email;
  if (outputFile !== undefined) env.GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE = outputFile;
  return { kind: "executable", argv, timeoutMs, ...(outputFile !== undefined ? { outputFile } : {}), env };
}

const WORKFORCE_AUDIENCE = /^\/\/iam\.googleapis\.com\/locations\/[^/]+\/workforcePools\/[^/]+\/providers\/.+$/;

function parseLifetime(j: Record<string, unknown>, file: string): number {
  const imp = j.service_account_impersonation;
  if (imp === undefined || imp === null) return DEFAULT_LIFETIME_SECONDS;
  const io = obj(imp);
  if (io === undefined) throw googleFail(`${file}: "service_account_impersonation" must be an object`);
  const v = io.token_lifetime_seconds;
  if (v === undefined || v === null) return DEFAULT_LIFETIME_SECONDS;
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw googleFail(
      `${file}: "service_account_impersonation.token_lifetime_seconds" must be a positive whole number of seconds`,
    );
  }
  return v;
}

/**
 * Reads an `external_account` credentials file (AIP-4117: workload and workforce identity
 * federation): `audience`, `subject_token_type`, `token_url` (default Google's STS),
 * `credential_source` (`file` or `url` with `format` text or json and `headers`, `executable`, or
 * `environment_id: "aws1"`),
 * `service_account_impersonation_url` + `service_account_impersonation.token_lifetime_seconds`,
 * `workforce_pool_user_project`, `client_id`/`client_secret`. `quota_project_id` does not affect
 * registry tokens and is ignored; a `universe_domain` other than googleapis.com is refused.
 * Throws a `CREDENTIAL_PROVIDER_FAILED` KilnError naming the file and the field; X.509
 * certificate sources are refused with a clear message.
 */
export function parseExternalAccount(j: Record<string, unknown>, file: string): ExternalAccountConfig {
  const universe = optionalString(j, "universe_domain", file);
  if (universe !== undefined && universe !== "googleapis.com") {
    throw googleFail(
      `${file} is for the universe ${universe}; kiln exchanges tokens only with Google Cloud's own endpoints (universe googleapis.com)`,
    );
  }
  const audience = requiredString(j, "audience", file);
  const subjectTokenType = requiredString(j, "subject_token_type", file);
  const tokenUrl = checkGoogleUrl(optionalString(j, "token_url", file) ?? DEFAULT_STS_URL, "token_url", "sts", file);
  const imp = optionalString(j, "service_account_impersonation_url", file);
  const impersonationUrl =
    imp === undefined ? undefined : checkGoogleUrl(imp, "service_account_impersonation_url", "iamcredentials", file);
  const workforcePoolUserProject = optionalString(j, "workforce_pool_user_project", file);
  if (workforcePoolUserProject !== undefined && !WORKFORCE_AUDIENCE.test(audience)) {
    throw googleFail(
      `${file}: "workforce_pool_user_project" is only valid with a workforce pool audience (//iam.googleapis.com/locations/<location>/workforcePools/<pool>/providers/<provider>)`,
    );
  }
  const clientId = optionalString(j, "client_id", file);
  const clientSecret = optionalString(j, "client_secret", file);
  const source = parseSource(j, file);
  return {
    file,
    audience,
    subjectTokenType,
    tokenUrl,
    ...(impersonationUrl !== undefined ? { impersonationUrl } : {}),
    tokenLifetimeSeconds: parseLifetime(j, file),
    ...(workforcePoolUserProject !== undefined ? { workforcePoolUserProject } : {}),
    ...(clientId !== undefined ? { client: { id: clientId, secret: clientSecret ?? "" } } : {}),
    source,
  };
}
