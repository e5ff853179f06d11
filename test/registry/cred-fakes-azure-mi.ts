/**
 * Loopback stand-ins for Azure's managed-identity endpoints: the Instance Metadata Service (IMDS,
 * `GET /metadata/identity/oauth2/token`, api-version 2018-02-01, `Metadata: true`) and the App
 * Service / Container Apps identity endpoint (api-version 2019-08-01, `X-IDENTITY-HEADER`). Each
 * checks what the real endpoint checks — the header, the api-version, the resource, which identity
 * (`client_id`) is asked for — answers Azure's JSON error shapes otherwise, and records requests.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { serve as serveFake, type FakeEndpoint } from "./cred-fakes.js";

const ARM = "https://management.azure.com/";

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

function tokenAnswer(accessToken: string, clientId: string): Record<string, string> {
  const now = Math.floor(Date.now() / 1000);
  return {
    access_token: accessToken,
    client_id: clientId,
    expires_in: "86399",
    expires_on: String(now + 86399),
    ext_expires_in: "86399",
    not_before: String(now),
    resource: ARM,
    token_type: "Bearer",
  };
}

/** {@link serveFake} with the request's URL parsed for the handler. */
function serve(handler: (req: IncomingMessage, url: URL, res: ServerResponse) => void): Promise<FakeEndpoint> {
  return serveFake((req, _body, res) => handler(req, new URL(req.url ?? "/", "http://fake"), res));
}

/** Options of {@link startFakeImds}. */
export interface FakeImdsOptions {
  /** The access token IMDS issues. */
  accessToken: string;
  /** Client ID of the VM's system-assigned identity (answered when no `client_id` is asked for); none = no system identity. */
  systemClientId?: string;
  /** Client IDs (`client_id=`) or ARM resource IDs (`msi_res_id=`) of the user-assigned identities attached to the VM. */
  userAssigned?: string[];
  /** Answers given (in order) to the first requests instead of a token, e.g. a throttled 429 or a 503. */
  transient?: { status: number; retryAfter?: string }[];
}

/**
 * IMDS on loopback (what `AZURE_POD_IDENTITY_AUTHORITY_HOST` points at): a token for the ARM
 * resource, only with `Metadata: true` and api-version 2018-02-01, for the system-assigned identity
 * or an attached user-assigned one; otherwise IMDS's 400 `invalid_request` answers.
 */
export function startFakeImds(opts: FakeImdsOptions): Promise<FakeEndpoint> {
  const transient = [...(opts.transient ?? [])];
  return serve((req, url, res) => {
    const next = transient.shift();
    if (next !== undefined) {
      const text = JSON.stringify({ error: "temporarily_unavailable", error_description: "try again" });
      res.writeHead(next.status, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(text),
        ...(next.retryAfter !== undefined ? { "retry-after": next.retryAfter } : {}),
      });
      res.end(text);
      return;
    }
    if (req.method !== "GET" || url.pathname !== "/metadata/identity/oauth2/token") {
      return json(res, 404, { error: "not_found" });
    }
    if (req.headers.metadata !== "true") {
      return json(res, 400, { error: "invalid_request", error_description: "Required metadata header not specified" });
    }
    if (req.headers["x-forwarded-for"] !== undefined) {
      return json(res, 400, { error: "invalid_request", error_description: "Request contains X-Forwarded-For header" });
    }
    if (url.searchParams.get("api-version") !== "2018-02-01") {
      return json(res, 400, { error: "invalid_request", error_description: "Invalid api-version" });
    }
    if (url.searchParams.get("resource") !== ARM) {
      return json(res, 400, { error: "invalid_resource", error_description: "AADSTS500011: resource not found" });
    }
    const asked = url.searchParams.get("client_id") ?? url.searchParams.get("msi_res_id");
    const identity = asked === null ? opts.systemClientId : opts.userAssigned?.includes(asked) ? asked : undefined;
    if (identity === undefined) {
      return json(res, 400, { error: "invalid_request", error_description: "Identity not found" });
    }
    return json(res, 200, tokenAnswer(opts.accessToken, identity));
  });
}

/**
 * The App Service / Container Apps identity endpoint on loopback (`IDENTITY_ENDPOINT` =
 * `<url>/msi/token`): a token only with `X-IDENTITY-HEADER: <identityHeader>`, api-version
 * 2019-08-01 and the ARM resource; a user-assigned identity by `client_id`.
 */
export function startFakeAppServiceIdentity(opts: {
  identityHeader: string;
  accessToken: string;
  systemClientId: string;
  userAssigned?: string[];
}): Promise<FakeEndpoint> {
  return serve((req, url, res) => {
    if (req.method !== "GET" || url.pathname !== "/msi/token") return json(res, 404, { error: "not_found" });
    if (req.headers["x-identity-header"] !== opts.identityHeader) {
      return json(res, 401, { error: "unauthorized_client", error_description: "X-IDENTITY-HEADER mismatch" });
    }
    if (url.searchParams.get("api-version") !== "2019-08-01" || url.searchParams.get("resource") !== ARM) {
      return json(res, 400, { error: "invalid_request", error_description: "api-version or resource" });
    }
    const asked = url.searchParams.get("client_id");
    const identity = asked === null ? opts.systemClientId : opts.userAssigned?.includes(asked) ? asked : undefined;
    if (identity === undefined) {
      return json(res, 400, { error: "invalid_request", error_description: "Identity not found" });
    }
    return json(res, 200, tokenAnswer(opts.accessToken, identity));
  });
}

/**
 * Another cloud's metadata server at the link-local address: answers every path with an HTML 404,
 * as AWS's and Google's do for Azure's token path.
 */
export function startForeignMetadataServer(): Promise<FakeEndpoint> {
  return serve((_req, _url, res) => {
    const html = "<html><body><h1>404 - Not Found</h1></body></html>";
    res.writeHead(404, { "content-type": "text/html", "content-length": Buffer.byteLength(html) });
    res.end(html);
  });
}

/** A TCP listener that accepts connections and never answers (a hung metadata endpoint). */
export async function startSilentListener(): Promise<{ url: string; stop(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer();
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("request", () => undefined);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
