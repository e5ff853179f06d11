/**
 * A small Bearer token server for tests (distribution token-auth spec): issues RS256 JWTs that a
 * real `docker-registry` verifies through `auth.token.rootcertbundle` (the signing certificate is
 * sent in the `x5c` header). Supports Basic credentials, anonymous pull-only scopes, OAuth2
 * refresh-token POSTs, and already-expired tokens to exercise re-authentication.
 */
import { execFileSync } from "node:child_process";
import { createPrivateKey, randomUUID, sign, X509Certificate, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";

/** Options of {@link startTokenIssuer}. */
export interface TokenIssuerOptions {
  /** Directory for the key and certificate files. */
  dir: string;
  /** username → password accepted with Basic auth. */
  users?: Record<string, string>;
  /** refresh (identity) token → account, accepted by the OAuth2 POST. */
  identityTokens?: Record<string, string>;
  /** Grant `pull` to anonymous requests (default true). */
  anonymousPull?: boolean;
  /** Answer OAuth2 POSTs (default true); false answers 404 like token servers without OAuth2. */
  oauth?: boolean;
  /** `expires_in` reported to clients (default 300 s). */
  expiresIn?: number;
  service?: string;
  issuer?: string;
}

/** One request the issuer answered. */
export interface TokenRequest {
  method: string;
  account: string;
  scopes: string[];
  granted: string[];
}

/** A running token issuer. */
export interface TokenIssuer {
  realm: string;
  service: string;
  issuer: string;
  /** PEM certificate to put into the registry's `rootcertbundle`. */
  certFile: string;
  requests: TokenRequest[];
  /** Make the next `n` issued tokens already expired (past the registry's 60 s leeway). */
  expireNext(n: number): void;
  stop(): Promise<void>;
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString("base64url");
}

function makeJwt(key: KeyObject, certDer: Buffer, claims: Record<string, unknown>): string {
  const head = b64url(JSON.stringify({ typ: "JWT", alg: "RS256", x5c: [certDer.toString("base64")] }));
  const body = b64url(JSON.stringify(claims));
  const sig = sign("RSA-SHA256", Buffer.from(`${head}.${body}`), key);
  return `${head}.${body}.${b64url(sig)}`;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on("data", (b: Buffer) => parts.push(b));
    req.on("end", () => resolve(Buffer.concat(parts).toString("utf8")));
    req.on("error", reject);
  });
}

/** Starts the issuer on a free loopback port. */
export async function startTokenIssuer(opts: TokenIssuerOptions): Promise<TokenIssuer> {
  const keyFile = path.join(opts.dir, "token-key.pem");
  const certFile = path.join(opts.dir, "token-cert.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      keyFile,
      "-out",
      certFile,
      "-subj",
      "/CN=kiln-token-issuer",
      "-days",
      "2",
    ],
    { stdio: "ignore" },
  );
  const key = createPrivateKey(readFileSync(keyFile));
  const certDer = new X509Certificate(readFileSync(certFile)).raw;
  const service = opts.service ?? "kiln-test-registry";
  const issuer = opts.issuer ?? "kiln-test-issuer";
  const requests: TokenRequest[] = [];
  const state = { expireNext: 0 };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://localhost");
    let account = "";
    let scopes: string[] = [];
    if (req.method === "POST" && opts.oauth === false) {
      res.writeHead(404).end();
      return;
    }
    if (req.method === "POST") {
      const form = new URLSearchParams(await readBody(req));
      if (form.get("grant_type") !== "refresh_token") {
        res.writeHead(400, { "content-type": "application/json" }).end('{"error":"unsupported_grant_type"}');
        return;
      }
      const acct = opts.identityTokens?.[form.get("refresh_token") ?? ""];
      if (acct === undefined) {
        res.writeHead(401, { "content-type": "application/json" }).end('{"error":"invalid_grant"}');
        return;
      }
      account = acct;
      scopes = (form.get("scope") ?? "").split(" ").filter((s) => s !== "");
    } else {
      scopes = url.searchParams.getAll("scope");
      const auth = req.headers.authorization;
      if (auth?.startsWith("Basic ")) {
        const decoded = Buffer.from(auth.slice(6), "base64").toString("utf8");
        const i = decoded.indexOf(":");
        const user = decoded.slice(0, i);
        const pass = decoded.slice(i + 1);
        const viaIdentity = user === "<token>" ? opts.identityTokens?.[pass] : undefined;
        if (viaIdentity !== undefined) {
          account = viaIdentity;
        } else if (opts.users?.[user] !== pass) {
          res.writeHead(401, { "content-type": "application/json" });
          res.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "bad username or password" }] }));
          return;
        } else {
          account = user;
        }
      }
    }
    const access: { type: string; name: string; actions: string[] }[] = [];
    const granted: string[] = [];
    for (const s of scopes) {
      const m = /^([a-z]+):(.+):([a-z*,]+)$/.exec(s);
      if (m === null) continue;
      const [, type = "", name = "", acts = ""] = m;
      let actions = acts.split(",");
      if (account === "") actions = opts.anonymousPull === false ? [] : actions.filter((a) => a === "pull");
      access.push({ type, name, actions });
      granted.push(`${type}:${name}:${actions.join(",")}`);
    }
    requests.push({ method: req.method ?? "GET", account, scopes, granted });
    const now = Math.floor(Date.now() / 1000);
    const expired = state.expireNext > 0;
    if (expired) state.expireNext--;
    const exp = expired ? now - 3600 : now + (opts.expiresIn ?? 300);
    const token = makeJwt(key, certDer, {
      iss: issuer,
      sub: account,
      aud: service,
      exp,
      nbf: expired ? now - 7200 : now - 10,
      iat: expired ? now - 7200 : now,
      jti: randomUUID(),
      access,
    });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        token,
        access_token: token,
        expires_in: opts.expiresIn ?? 300,
        issued_at: new Date().toISOString(),
      }),
    );
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      res.writeHead(500).end(String(e));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certFile,
    requests,
    expireNext: (n) => {
      state.expireNext = n;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
