/**
 * Loopback stand-ins for Google workload identity federation (AIP-4117): an OIDC issuer that signs
 * subject tokens and serves them from a URL guarded by a header (like GitHub Actions' ID token
 * endpoint or Azure IMDS), Google's STS (RFC 8693 token exchange: verifies the subject token's
 * RS256 signature, audience and expiry and every form field) and IAM Credentials'
 * `generateAccessToken` (verifies the Bearer STS token and the JSON body), and the AWS instance
 * metadata service (IMDSv2). For AWS subject tokens STS replays nothing but signs the request it
 * was handed again with the AWS SDK's signer and compares: kiln must have signed exactly the
 * request that Google's STS replays to AWS. Each records what kiln sent, so tests can assert on it.
 */
import { createHash, createHmac, generateKeyPairSync, randomBytes, verify, type KeyObject } from "node:crypto";
import type { ServerResponse } from "node:http";
import { SignatureV4 } from "@smithy/signature-v4";
import { signRs256Jwt } from "../../src/registry/cred-providers/jwt.js";
import { json, serve, type FakeEndpoint } from "./cred-fakes.js";

export const CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform";

/** An external OIDC identity provider (a CI system) that signs ID tokens. */
export interface FakeIssuer {
  issuer: string;
  publicKey: KeyObject;
  /** A fresh RS256 ID token for `aud`, valid for 5 minutes (or already expired). */
  idToken(aud: string, opts?: { expired?: boolean }): string;
}

/** A fresh OIDC issuer with its own RSA key. */
export function createIssuer(issuer = "https://gitlab.example.com"): FakeIssuer {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  return {
    issuer,
    publicKey,
    idToken(aud, opts = {}) {
      const now = Math.floor(Date.now() / 1000);
      const iat = opts.expired ? now - 7200 : now;
      return signRs256Jwt(
        { kid: "ci-1" },
        { iss: issuer, sub: "project_path:team/app:ref_type:branch:ref:main", aud, iat, exp: iat + 300 },
        pem,
      );
    },
  };
}

function b64urlJson(part: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as Record<string, unknown>;
}

/** Verifies an RS256 JWT's signature with `key`; answers its claims, or undefined. */
function verifiedClaims(jwt: string, key: KeyObject): Record<string, unknown> | undefined {
  const [h = "", c = "", s = ""] = jwt.split(".");
  try {
    if (b64urlJson(h).alg !== "RS256") return undefined;
    if (!verify("RSA-SHA256", Buffer.from(`${h}.${c}`), key, Buffer.from(s, "base64url"))) return undefined;
    return b64urlJson(c);
  } catch {
    return undefined;
  }
}

/** Options of {@link startFakeSts}. */
export interface FakeStsOptions {
  /** The workload identity pool provider kiln must name as `audience` (and the ID token's `aud`). */
  audience: string;
  /** The OIDC issuer whose ID tokens are accepted (subject token type jwt / id_token). */
  issuer?: FakeIssuer;
  /** The AWS identity whose signed GetCallerIdentity requests are accepted (subject token type aws4_request). */
  aws?: { accessKeyId: string; secretAccessKey: string; region: string };
  subjectTokenType?: string;
  /** The federated access token issued on success. */
  accessToken: string;
  /** Answer every exchange with this status (an OAuth2 error body) instead. */
  failWith?: number;
}

/**
 * Google STS `POST /v1/token` (RFC 8693): demands a form body with the token-exchange grant, the
 * configured audience, the cloud-platform scope, an access-token requested type and a subject
 * token of the configured type whose signature, `aud` and `exp` verify against the issuer.
 */
export function startFakeSts(opts: FakeStsOptions): Promise<FakeEndpoint> {
  const subjectTokenType = opts.subjectTokenType ?? "urn:ietf:params:oauth:token-type:jwt";
  return serve((req, body, res) => {
    if (req.method !== "POST" || req.url !== "/v1/token") return json(res, 404, { error: "not_found" });
    if (req.headers["content-type"] !== "application/x-www-form-urlencoded") {
      return json(res, 400, { error: "invalid_request", error_description: "form body expected" });
    }
    if (opts.failWith !== undefined) {
      return json(res, opts.failWith, {
        error: "invalid_grant",
        error_description: "The audience in ID Token does not match the expected audience.",
      });
    }
    const form = new URLSearchParams(body);
    const fieldsOk =
      form.get("grant_type") === "urn:ietf:params:oauth:grant-type:token-exchange" &&
      form.get("audience") === opts.audience &&
      form.get("scope") === CLOUD_PLATFORM &&
      form.get("requested_token_type") === "urn:ietf:params:oauth:token-type:access_token" &&
      form.get("subject_token_type") === subjectTokenType;
    if (!fieldsOk) return json(res, 400, { error: "invalid_request" });
    const subject = form.get("subject_token") ?? "";
    const grant = () =>
      json(res, 200, {
        access_token: opts.accessToken,
        issued_token_type: "urn:ietf:params:oauth:token-type:access_token",
        token_type: "Bearer",
        expires_in: 3599,
      });
    if (opts.aws !== undefined) {
      void verifyAwsSubjectToken(subject, opts.audience, opts.aws).then(
        (ok) => (ok ? grant() : json(res, 400, { error: "invalid_grant" })),
        () => json(res, 400, { error: "invalid_grant" }),
      );
      return;
    }
    const claims = opts.issuer === undefined ? undefined : verifiedClaims(subject, opts.issuer.publicKey);
    const now = Math.floor(Date.now() / 1000);
    if (
      claims === undefined ||
      claims.iss !== opts.issuer?.issuer ||
      claims.aud !== opts.audience ||
      typeof claims.exp !== "number" ||
      claims.exp <= now
    ) {
      return json(res, 400, { error: "invalid_grant" });
    }
    grant();
  });
}

type SourceData = string | ArrayBuffer | ArrayBufferView;

function bytes(d: SourceData): string | Buffer {
  if (typeof d === "string") return d;
  return ArrayBuffer.isView(d) ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.from(d);
}

/** node:crypto behind the hash interface the AWS SDK signer takes. */
class NodeSha256 {
  private h: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;
  private readonly secret: string | Buffer | undefined;
  constructor(secret?: SourceData) {
    this.secret = secret === undefined ? undefined : bytes(secret);
    this.h = this.fresh();
  }
  private fresh(): ReturnType<typeof createHash> | ReturnType<typeof createHmac> {
    return this.secret === undefined ? createHash("sha256") : createHmac("sha256", this.secret);
  }
  update(data: SourceData): void {
    this.h.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.h.digest()));
  }
  reset(): void {
    this.h = this.fresh();
  }
}

/**
 * What Google's STS (and behind it AWS STS) checks of an AWS subject token: URL-encoded JSON of a
 * POST GetCallerIdentity request to `sts.<region>.amazonaws.com`, naming the pool provider in
 * `x-goog-cloud-target-resource`, whose SigV4 Authorization is what the AWS SDK computes for the
 * known secret key at the request's `x-amz-date`.
 */
async function verifyAwsSubjectToken(
  subject: string,
  audience: string,
  aws: { accessKeyId: string; secretAccessKey: string; region: string },
): Promise<boolean> {
  const req = JSON.parse(decodeURIComponent(subject)) as {
    url: string;
    method: string;
    headers: { key: string; value: string }[];
  };
  const h = new Map(req.headers.map((x) => [x.key.toLowerCase(), x.value]));
  const url = new URL(req.url);
  if (
    req.method !== "POST" ||
    url.protocol !== "https:" ||
    url.hostname !== `sts.${aws.region}.amazonaws.com` ||
    url.searchParams.get("Action") !== "GetCallerIdentity" ||
    url.searchParams.get("Version") !== "2011-06-15" ||
    h.get("x-goog-cloud-target-resource") !== audience ||
    h.get("host") !== url.host
  ) {
    return false;
  }
  const d = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(h.get("x-amz-date") ?? "");
  if (d === null) return false;
  const signingDate = new Date(`${d[1]}-${d[2]}-${d[3]}T${d[4]}:${d[5]}:${d[6]}Z`);
  const sessionToken = h.get("x-amz-security-token");
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: aws.accessKeyId,
      secretAccessKey: aws.secretAccessKey,
      ...(sessionToken !== undefined ? { sessionToken } : {}),
    },
    region: aws.region,
    service: "sts",
    sha256: NodeSha256,
    applyChecksum: false,
  });
  const signed = await signer.sign(
    {
      method: "POST",
      protocol: "https:",
      hostname: url.hostname,
      path: url.pathname || "/",
      query: Object.fromEntries(url.searchParams),
      headers: { host: url.host, "x-goog-cloud-target-resource": audience },
    },
    { signingDate },
  );
  return signed.headers.authorization === h.get("authorization");
}

/** Options of {@link startFakeImds}. */
export interface FakeImdsOptions {
  /** e.g. "eu-west-1b" */
  availabilityZone: string;
  role: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken: string };
}

/**
 * The EC2 instance metadata service with IMDSv2 required: `PUT /latest/api/token` (with a TTL
 * header) issues a session token that every `GET /latest/meta-data/…` must carry.
 */
export function startFakeImds(opts: FakeImdsOptions): Promise<FakeEndpoint> {
  const sessions = new Set<string>();
  const text = (res: ServerResponse, status: number, body: string) => {
    res.writeHead(status, { "content-type": "text/plain", "content-length": Buffer.byteLength(body) });
    res.end(body);
  };
  return serve((req, _body, res) => {
    if (req.method === "PUT" && req.url === "/latest/api/token") {
      if (!req.headers["x-aws-ec2-metadata-token-ttl-seconds"]) return text(res, 400, "Bad Request");
      const t = `imds-${randomBytes(12).toString("hex")}`;
      sessions.add(t);
      return text(res, 200, t);
    }
    if (req.method !== "GET") return text(res, 405, "Method Not Allowed");
    if (!sessions.has(String(req.headers["x-aws-ec2-metadata-token"] ?? ""))) return text(res, 401, "Unauthorized");
    const creds = "/latest/meta-data/iam/security-credentials";
    if (req.url === "/latest/meta-data/placement/availability-zone") return text(res, 200, opts.availabilityZone);
    if (req.url === creds || req.url === `${creds}/`) return text(res, 200, opts.role);
    if (req.url === `${creds}/${opts.role}`) {
      return json(res, 200, {
        Code: "Success",
        Type: "AWS-HMAC",
        AccessKeyId: opts.credentials.accessKeyId,
        SecretAccessKey: opts.credentials.secretAccessKey,
        Token: opts.credentials.sessionToken,
        Expiration: new Date(Date.now() + 3600_000).toISOString(),
      });
    }
    return text(res, 404, "Not Found");
  });
}

/** Options of {@link startFakeIamCredentials}. */
export interface FakeIamOptions {
  /** The service account kiln impersonates. */
  serviceAccount: string;
  /** The STS token that may impersonate it. */
  stsToken: string;
  /** The service account's access token issued on success. */
  accessToken: string;
}

/**
 * IAM Credentials `POST /v1/projects/-/serviceAccounts/<sa>:generateAccessToken`: demands
 * `Authorization: Bearer <stsToken>` and a JSON body `{scope: [cloud-platform], lifetime: "<n>s"}`.
 */
export function startFakeIamCredentials(opts: FakeIamOptions): Promise<FakeEndpoint> {
  const path = `/v1/projects/-/serviceAccounts/${opts.serviceAccount}:generateAccessToken`;
  return serve((req, body, res) => {
    if (req.method !== "POST" || decodeURIComponent(req.url ?? "") !== path) {
      return json(res, 404, { error: { code: 404, status: "NOT_FOUND", message: "Not found" } });
    }
    if (req.headers.authorization !== `Bearer ${opts.stsToken}`) {
      return json(res, 401, { error: { code: 401, status: "UNAUTHENTICATED", message: "bad credentials" } });
    }
    let j: { scope?: unknown; lifetime?: unknown };
    try {
      j = JSON.parse(body) as typeof j;
    } catch {
      return json(res, 400, { error: { code: 400, status: "INVALID_ARGUMENT", message: "not JSON" } });
    }
    const ok =
      String(req.headers["content-type"]).startsWith("application/json") &&
      Array.isArray(j.scope) &&
      j.scope.includes(CLOUD_PLATFORM) &&
      typeof j.lifetime === "string" &&
      /^\d+s$/.test(j.lifetime);
    if (!ok) return json(res, 400, { error: { code: 400, status: "INVALID_ARGUMENT", message: "bad request" } });
    return json(res, 200, {
      accessToken: opts.accessToken,
      expireTime: new Date(Date.now() + 3600_000).toISOString(),
    });
  });
}

/**
 * A subject token URL like GitHub Actions' ID token endpoint: `GET /token?audience=<aud>` with the
 * header `authorization: bearer <runtimeToken>` answers `{"count":…, "value": <ID token for aud>}`.
 */
export function startFakeTokenUrl(opts: { issuer: FakeIssuer; runtimeToken: string }): Promise<FakeEndpoint> {
  return serve((req, _body, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    if (req.method !== "GET" || u.pathname !== "/token") return json(res, 404, { message: "not found" });
    const m = /^bearer (.+)$/i.exec(req.headers.authorization ?? "");
    if (m?.[1] !== opts.runtimeToken) {
      return json(res, 401, { message: "Unauthorized" });
    }
    const aud = u.searchParams.get("audience");
    if (aud === null) return json(res, 400, { message: "audience missing" });
    return json(res, 200, { count: 1, value: opts.issuer.idToken(aud) });
  });
}
