/**
 * Loopback stand-ins for the cloud token endpoints kiln's built-in credential providers call: the
 * ECR JSON API (GetAuthorizationToken), Google's OAuth2 token endpoint and metadata server, Azure
 * AD's token endpoint, and a front for a real docker-registry that adds ACR's `/oauth2/exchange`.
 * Each checks what a real endpoint would check (SigV4 header, JWT signature, client secret or
 * assertion) and records the requests, so tests can assert what kiln sent.
 */
import { execFile } from "node:child_process";
import { createPublicKey, verify, type KeyObject } from "node:crypto";
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";

/** Inherited variables a credential test must not pass on: cloud identities, docker config, proxies, CAs. */
const CLOUD_ENV =
  /^(AWS_|AZURE_|GOOGLE_|GCE_|CLOUDSDK_|DOCKER_|CI_REGISTRY|KANIKO_|REGISTRY_AUTH_FILE|XDG_RUNTIME_DIR|IDENTITY_|MSI_|IMDS_|SSL_CERT_)/;

/**
 * The env of a kiln run in a credential test: this process's variables with every cloud, docker, proxy
 * and CA setting removed, `HOME` set to `home`, then `extra`.
 */
export function cloudFreeEnv(home: string, extra: Record<string, string>): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { HOME: home, PATH: process.env.PATH };
  for (const k of Object.keys(process.env)) {
    if (CLOUD_ENV.test(k) || /^(https?|no)_proxy$/i.test(k)) env[k] = undefined;
  }
  return { ...env, ...extra };
}

/** A running fake endpoint. */
export interface FakeEndpoint {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT` */
  host: string;
  requests: { method: string; path: string; headers: IncomingMessage["headers"]; body: string }[];
  stop(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on("data", (b: Buffer) => parts.push(b));
    req.on("end", () => resolve(Buffer.concat(parts).toString("utf8")));
    req.on("error", reject);
  });
}

/** Answers `body` as JSON with `status`. */
export function json(res: ServerResponse, status: number, body: unknown, type = "application/json"): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/**
 * A loopback HTTP server that records every request (with its body) and passes it to `handler`; a
 * handler that throws answers 500. `raw` may answer a request itself, before the body is read.
 */
export async function serve(
  handler: (req: IncomingMessage, body: string, res: ServerResponse) => void | Promise<void>,
  raw?: (req: IncomingMessage, res: ServerResponse) => boolean,
): Promise<FakeEndpoint> {
  const requests: FakeEndpoint["requests"] = [];
  const server: Server = createServer((req, res) => {
    if (raw?.(req, res) === true) return;
    void readBody(req).then(async (body) => {
      requests.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers, body });
      try {
        await handler(req, body, res);
      } catch (e) {
        json(res, 500, { error: "server_error", message: (e as Error).message });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The ECR JSON 1.1 API on loopback: answers `GetAuthorizationToken` (only when the request carries
 * an AWS SigV4 Authorization for `accessKeyId`) with base64 `AWS:<password>`.
 */
export function startFakeEcr(opts: { accessKeyId: string; password: string }): Promise<FakeEndpoint> {
  return serve((req, body, res) => {
    const target = req.headers["x-amz-target"];
    const auth = String(req.headers.authorization ?? "");
    if (target !== "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken") {
      json(res, 400, { __type: "UnknownOperationException" }, "application/x-amz-json-1.1");
      return;
    }
    if (!auth.startsWith(`AWS4-HMAC-SHA256 Credential=${opts.accessKeyId}/`)) {
      json(
        res,
        400,
        { __type: "UnrecognizedClientException", message: "The security token included in the request is invalid." },
        "application/x-amz-json-1.1",
      );
      return;
    }
    JSON.parse(body || "{}");
    json(
      res,
      200,
      {
        authorizationData: [
          {
            authorizationToken: Buffer.from(`AWS:${opts.password}`).toString("base64"),
            expiresAt: Math.floor(Date.now() / 1000) + 43200,
            proxyEndpoint: "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
          },
        ],
      },
      "application/x-amz-json-1.1",
    );
  });
}

function b64urlJson(part: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as Record<string, unknown>;
}

/**
 * Google's OAuth2 token endpoint (`POST /token`, RFC 7523 JWT bearer grant: the assertion must be
 * signed by `publicKeyPem` and name the cloud-platform scope) and the metadata server
 * (`GET /computeMetadata/v1/instance/service-accounts/default/token` with `Metadata-Flavor: Google`).
 */
export function startFakeGoogle(opts: { publicKeyPem: string; accessToken: string }): Promise<FakeEndpoint> {
  const key: KeyObject = createPublicKey(opts.publicKeyPem);
  return serve((req, body, res) => {
    if (req.method === "GET" && req.url === "/computeMetadata/v1/instance/service-accounts/default/token") {
      if (req.headers["metadata-flavor"] !== "Google") return json(res, 403, { error: "access_denied" });
      return json(res, 200, { access_token: opts.accessToken, expires_in: 3599, token_type: "Bearer" });
    }
    if (req.method !== "POST" || req.url !== "/token") return json(res, 404, { error: "not_found" });
    const form = new URLSearchParams(body);
    if (form.get("grant_type") !== "urn:ietf:params:oauth:grant-type:jwt-bearer") {
      return json(res, 400, { error: "unsupported_grant_type" });
    }
    const [h = "", c = "", s = ""] = (form.get("assertion") ?? "").split(".");
    const header = b64urlJson(h);
    const claims = b64urlJson(c);
    const ok =
      header.alg === "RS256" &&
      verify("RSA-SHA256", Buffer.from(`${h}.${c}`), key, Buffer.from(s, "base64url")) &&
      claims.scope === "https://www.googleapis.com/auth/cloud-platform" &&
      typeof claims.aud === "string" &&
      claims.aud.endsWith("/token");
    if (!ok) return json(res, 400, { error: "invalid_grant" });
    return json(res, 200, { access_token: opts.accessToken, expires_in: 3599, token_type: "Bearer" });
  });
}

/**
 * Azure AD's v2 token endpoint for one tenant (`POST /<tenant>/oauth2/v2.0/token`, client
 * credentials grant by client secret or by client assertion = the workload identity token).
 */
export function startFakeAad(opts: {
  tenant: string;
  clientId: string;
  clientSecret?: string;
  federatedToken?: string;
  accessToken: string;
}): Promise<FakeEndpoint> {
  return serve((req, body, res) => {
    if (req.method !== "POST" || req.url !== `/${opts.tenant}/oauth2/v2.0/token`) {
      return json(res, 404, { error: "invalid_request" });
    }
    const form = new URLSearchParams(body);
    const bySecret = opts.clientSecret !== undefined && form.get("client_secret") === opts.clientSecret;
    const byAssertion =
      opts.federatedToken !== undefined &&
      form.get("client_assertion_type") === "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" &&
      form.get("client_assertion") === opts.federatedToken;
    if (form.get("grant_type") !== "client_credentials" || form.get("client_id") !== opts.clientId) {
      return json(res, 400, { error: "invalid_request" });
    }
    if (!bySecret && !byAssertion) return json(res, 401, { error: "invalid_client" });
    return json(res, 200, { access_token: opts.accessToken, expires_in: 3599, token_type: "Bearer" });
  });
}

/**
 * A front for a real (plain-HTTP) docker-registry at `target` that answers ACR's
 * `POST /oauth2/exchange` (AAD token → refresh token) and forwards everything else unchanged.
 */
export function startAcrFront(opts: { target: string; aadToken: string; refreshToken: string }): Promise<FakeEndpoint> {
  const [host = "127.0.0.1", port = "80"] = opts.target.split(":");
  const forward = (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.url === "/oauth2/exchange") return false;
    const up = request(
      { host, port: Number(port), method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
    return true;
  };
  return serve((req, body, res) => {
    const form = new URLSearchParams(body);
    if (req.method !== "POST" || form.get("grant_type") !== "access_token") {
      return json(res, 400, { error: "unsupported_grant_type" });
    }
    if (form.get("access_token") !== opts.aadToken) return json(res, 401, { error: "invalid_grant" });
    return json(res, 200, { refresh_token: opts.refreshToken });
  }, forward);
}

/** How many layers the image `ref` (`host/repo:tag`) has, as skopeo sees it with the given credentials. */
export async function pushedLayerCount(ref: string, user: string, password: string): Promise<number> {
  const { stdout } = await promisify(execFile)("skopeo", [
    "inspect",
    "--tls-verify=false",
    "--creds",
    `${user}:${password}`,
    `docker://${ref}`,
  ]);
  return (JSON.parse(stdout) as { Layers: string[] }).Layers.length;
}
