/**
 * Loopback stand-ins for Amazon ECR Public: its JSON 1.1 API (`GetAuthorizationToken`, checked the
 * way AWS checks it: the full SigV4 signature for service `ecr-public` in us-east-1, the target and
 * content-type headers, the session token) and a front that makes a real docker-registry answer as
 * `https://public.ecr.aws` through an HTTPS proxy (CONNECT to `public.ecr.aws:443` only, TLS with a
 * test CA), so kiln's CLI can push to `public.ecr.aws/...` without leaving loopback.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { connect, type AddressInfo, type Socket } from "node:net";
import { makeTls } from "../support/registry.js";

/** A recorded request of a fake endpoint. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
}

/** The fake ECR Public API. */
export interface FakeEcrPublic {
  /** `http://127.0.0.1:PORT` (for `AWS_ENDPOINT_URL_ECR_PUBLIC`) */
  url: string;
  requests: RecordedRequest[];
  stop(): Promise<void>;
}

/** The identity the fake accepts and the registry password its token carries. */
export interface FakeEcrPublicOptions {
  accessKeyId: string;
  secretAccessKey: string;
  /** When set, requests must carry it as `x-amz-security-token` (and sign it). */
  sessionToken?: string;
  password: string;
}

const JSON_11 = "application/x-amz-json-1.1";
const TARGET = "SpencerFrontendService.GetAuthorizationToken";

function sha256hex(s: string | Buffer): string {
  return createHash("sha256").update(s).digest("hex");
}

function hmac(key: Buffer | string, s: string): Buffer {
  return createHmac("sha256", key).update(s).digest();
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on("data", (b: Buffer) => parts.push(b));
    req.on("end", () => resolve(Buffer.concat(parts)));
    req.on("error", reject);
  });
}

function awsError(res: ServerResponse, status: number, type: string, message: string): void {
  const text = JSON.stringify({ __type: type, message });
  res.writeHead(status, { "content-type": JSON_11, "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function listen(server: Server | HttpsServer): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
}

function close(server: Server | HttpsServer): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

/** SigV4 `Authorization` header parts, or undefined when malformed. */
function parseAuthorization(
  h: string,
):
  | { accessKeyId: string; date: string; region: string; service: string; signed: string[]; signature: string }
  | undefined {
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(
      h,
    );
  if (m === null) return undefined;
  return {
    accessKeyId: m[1] ?? "",
    date: m[2] ?? "",
    region: m[3] ?? "",
    service: m[4] ?? "",
    signed: (m[5] ?? "").split(";"),
    signature: m[6] ?? "",
  };
}

/**
 * Checks a request the way AWS does for ECR Public's JSON API and answers `GetAuthorizationToken`
 * with `{"authorizationData": {"authorizationToken": base64("AWS:<password>"), "expiresAt": …}}`.
 * Errors are AWS's: 400 `UnrecognizedClientException` for an unknown key, 400
 * `InvalidSignatureException` (quoting the canonical request, as AWS does) for a bad signature or
 * scope, 400 `UnknownOperationException` for another target.
 */
export async function startFakeEcrPublic(opts: FakeEcrPublicOptions): Promise<FakeEcrPublic> {
  const requests: RecordedRequest[] = [];
  const handle = (req: IncomingMessage, body: Buffer, res: ServerResponse): void => {
    if (req.method !== "POST" || req.headers["x-amz-target"] !== TARGET) {
      return awsError(res, 400, "UnknownOperationException", "");
    }
    if (!String(req.headers["content-type"] ?? "").startsWith(JSON_11)) {
      return awsError(res, 400, "SerializationException", "wrong content-type");
    }
    const auth = parseAuthorization(String(req.headers.authorization ?? ""));
    if (auth === undefined) return awsError(res, 400, "IncompleteSignatureException", "malformed Authorization");
    if (auth.accessKeyId !== opts.accessKeyId) {
      return awsError(
        res,
        400,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
      );
    }
    if (auth.service !== "ecr-public") {
      return awsError(
        res,
        400,
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'ecr-public'.",
      );
    }
    if (auth.region !== "us-east-1") {
      return awsError(res, 400, "InvalidSignatureException", "Credential should be scoped to a valid region.");
    }
    const amzDate = String(req.headers["x-amz-date"] ?? "");
    const when = Date.parse(amzDate.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, "$1-$2-$3T$4:$5:$6Z"));
    if (!amzDate.startsWith(auth.date) || !(Math.abs(Date.now() - when) < 15 * 60_000)) {
      return awsError(res, 400, "InvalidSignatureException", "Signature expired or x-amz-date missing.");
    }
    for (const need of ["host", "x-amz-date", "x-amz-target", ...(opts.sessionToken ? ["x-amz-security-token"] : [])]) {
      if (!auth.signed.includes(need)) {
        return awsError(res, 400, "InvalidSignatureException", `'${need}' must be a signed header.`);
      }
    }
    if (opts.sessionToken !== undefined && req.headers["x-amz-security-token"] !== opts.sessionToken) {
      return awsError(
        res,
        400,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
      );
    }
    const canonicalHeaders = auth.signed
      .map(
        (name) =>
          `${name}:${String(req.headers[name] ?? "")
            .trim()
            .replace(/\s+/g, " ")}\n`,
      )
      .join("");
    const url = new URL(req.url ?? "/", "http://x");
    const canonicalQuery = [...url.searchParams.entries()]
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
      .sort()
      .join("&");
    const canonicalRequest = [
      "POST",
      url.pathname,
      canonicalQuery,
      canonicalHeaders,
      auth.signed.join(";"),
      sha256hex(body),
    ].join("\n");
    const scope = `${auth.date}/${auth.region}/${auth.service}/aws4_request`;
    const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256hex(canonicalRequest)].join("\n");
    const key = hmac(
      hmac(hmac(hmac(`AWS4${opts.secretAccessKey}`, auth.date), auth.region), auth.service),
      "aws4_request",
    );
    const expected = hmac(key, stringToSign);
    const given = Buffer.from(auth.signature, "hex");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      // AWS quotes the canonical request (with the signed session token) in this message.
      return awsError(
        res,
        400,
        "InvalidSignatureException",
        `The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for this request should have been\n'${canonicalRequest}'\n\nThe String-to-Sign should have been\n'${stringToSign}'\n`,
      );
    }
    JSON.parse(body.toString("utf8") || "{}");
    const text = JSON.stringify({
      authorizationData: {
        authorizationToken: Buffer.from(`AWS:${opts.password}`).toString("base64"),
        expiresAt: Math.floor(Date.now() / 1000) + 43200,
      },
    });
    res.writeHead(200, { "content-type": JSON_11, "content-length": Buffer.byteLength(text) });
    res.end(text);
  };
  const server = createServer((req, res) => {
    void readBody(req).then((body) => {
      requests.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers, body: body.toString() });
      try {
        handle(req, body, res);
      } catch (e) {
        awsError(res, 500, "InternalFailure", (e as Error).message);
      }
    });
  });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, requests, stop: () => close(server) };
}

/** A registry answering as `https://public.ecr.aws` through an HTTPS proxy. */
export interface PublicEcrFront {
  /** `http://127.0.0.1:PORT`: use as HTTPS_PROXY (and HTTP_PROXY) with NO_PROXY=127.0.0.1. */
  proxyUrl: string;
  /** PEM file of the CA that signed the `public.ecr.aws` certificate (for SSL_CERT_FILE). */
  caFile: string;
  /** CONNECT targets asked for, in order (anything but `public.ecr.aws:443` is refused). */
  connects: string[];
  /** Requests that reached the registry through the front. */
  requests: { method: string; path: string; authorization: boolean }[];
  stop(): Promise<void>;
}

/**
 * Serves the plain-HTTP docker-registry at `target` (`127.0.0.1:PORT`) as `https://public.ecr.aws`:
 * an HTTP proxy whose CONNECT to `public.ecr.aws:443` reaches a TLS front (certificate from a fresh
 * CA in `dir`) that forwards to the registry with `X-Forwarded-Proto: https`, so the registry's own
 * URLs (upload locations) name `https://public.ecr.aws` too. Nothing is resolved or dialled but
 * loopback: other CONNECT targets and plain proxy requests are refused.
 */
export async function startPublicEcrFront(opts: { target: string; dir: string }): Promise<PublicEcrFront> {
  const certs = makeTls(opts.dir, { name: "front", cn: "public.ecr.aws", san: "DNS:public.ecr.aws" });
  const [host = "127.0.0.1", port = "80"] = opts.target.split(":");
  const requests: PublicEcrFront["requests"] = [];
  const connects: string[] = [];
  const front = createHttpsServer(
    { cert: readFileSync(certs.cert), key: readFileSync(certs.key) },
    (req: IncomingMessage, res: ServerResponse) => {
      requests.push({
        method: req.method ?? "",
        path: req.url ?? "",
        authorization: req.headers.authorization !== undefined,
      });
      const up = request(
        {
          host,
          port: Number(port),
          method: req.method,
          path: req.url,
          headers: { ...req.headers, "x-forwarded-proto": "https" },
        },
        (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          upRes.pipe(res);
        },
      );
      up.on("error", () => res.destroy());
      req.pipe(up);
    },
  );
  const frontPort = await listen(front);
  const sockets = new Set<Socket>();
  const proxy = createServer((_req, res) => {
    res.writeHead(403, { "content-type": "text/plain" });
    res.end("this test proxy only tunnels to public.ecr.aws:443\n");
  });
  proxy.on("connect", (req: IncomingMessage, client: Socket, head: Buffer) => {
    const want = req.url ?? "";
    connects.push(want);
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => client.destroy());
    if (want.toLowerCase() !== "public.ecr.aws:443") {
      client.end("HTTP/1.1 403 Forbidden\r\n\r\n");
      return;
    }
    const upstream = connect(frontPort, "127.0.0.1", () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on("close", () => sockets.delete(upstream));
    upstream.on("error", () => client.destroy());
  });
  const proxyPort = await listen(proxy);
  return {
    proxyUrl: `http://127.0.0.1:${proxyPort}`,
    caFile: certs.caFile,
    connects,
    requests,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([close(proxy), close(front)]);
    },
  };
}
