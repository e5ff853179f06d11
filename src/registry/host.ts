import type { IncomingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";
import { request, type Dispatcher } from "undici";
import { errorMessage, KilnError } from "../common/errors.js";
import { hasCredentials, type Credentials, type Keychain } from "./credentials.js";
import { redactText, redactUrl, RegistryError, statusError } from "./errors.js";
import { parseRetryAfter } from "./retry.js";
import { parseWwwAuthenticate, type Challenge } from "./www-authenticate.js";

/** HTTP methods the registry client uses. */
export type HttpMethod = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";

/** A request body: bytes, or a factory re-opening a stream (so a request can be replayed after re-auth). */
export type RequestBody = Uint8Array | (() => Promise<Readable>);

/** One request to a registry, authenticated for `scopes`. */
export interface HostRequest {
  /** Verb phrase for error messages, e.g. `pulling`, `pushing`. */
  operation: string;
  method: HttpMethod;
  /** Path (`/v2/...`) or absolute URL (an upload `Location`). */
  url: string;
  /** Token scopes, e.g. `repository:app:pull,push`. */
  scopes: readonly string[];
  repository?: string;
  headers?: Record<string, string>;
  body?: RequestBody;
  signal?: AbortSignal;
  /** Follow 3xx for GET/HEAD (credentials are dropped when the host changes). */
  followRedirects?: boolean;
}

/** A registry's answer; the caller must consume or dump `body`. */
export interface HostResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Dispatcher.ResponseData["body"];
  url: URL;
}

/** First value of a response header. */
export function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Reads a body up to `limit` bytes; throws `tooLarge()` beyond that. */
export async function readLimited(body: Readable, limit: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    const b = chunk as Buffer;
    total += b.length;
    if (total > limit) {
      body.destroy();
      throw tooLarge();
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/** Reads a short error body (first 64 KiB) as text, never throwing. */
export async function errorBody(res: HostResponse): Promise<string> {
  try {
    return (await readLimited(res.body, 65536, () => new Error("too large"))).toString("utf8");
  } catch {
    return "";
  }
}

/** Builds the RegistryError for an unexpected status (consumes the body). */
export async function unexpected(
  res: HostResponse,
  operation: string,
  registry: string,
  repository: string | undefined,
): Promise<RegistryError> {
  const body = await errorBody(res);
  return statusError(
    operation,
    registry,
    repository,
    res.status,
    body,
    parseRetryAfter(header(res.headers, "retry-after")),
  );
}

/** Redirects followed for one GET/HEAD before giving up (registries redirect blobs once, to storage). */
const MAX_REDIRECTS = 5;
/** The largest token-server answer read (real ones are a few KiB: a JWT and a few fields). */
const MAX_TOKEN_ANSWER_BYTES = 1024 * 1024;
/** 401 answers one request goes through before its last one is returned (see requestAt). */
const MAX_AUTH_ROUNDS = 3;

const CERT_ERRORS = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS_CERT_ALTNAME/;

/** The string `code`s of `e` and of the errors it wraps (`cause`, four levels at most), outermost first. */
function errCodes(e: unknown): string[] {
  const codes: string[] = [];
  let cur: unknown = e;
  for (let i = 0; i < 4 && cur instanceof Error; i++) {
    const c = (cur as { code?: unknown }).code;
    if (typeof c === "string") codes.push(c);
    cur = cur.cause;
  }
  return codes;
}

function errCode(e: unknown): string {
  return errCodes(e)[0] ?? "";
}

/** `host:port` or `[v6]:port`: both schemes then address the same socket. */
function namedWithPort(registry: string): boolean {
  return /^(\[[^\]]+\]|[^:]+):\d+$/.test(registry);
}

/**
 * True when `e` (or an error it wraps) is a refused connection to a registry named with a port: both
 * schemes address that one socket, so nothing listens there now (e.g. a registry restarting). Trying the
 * other scheme would at best meet a server that came back meanwhile with the wrong protocol, and report
 * that instead of the retryable refusal.
 */
function refusedOnItsPort(registry: string, e: unknown): boolean {
  return namedWithPort(registry) && errCodes(e).includes("ECONNREFUSED");
}

/** Loopback / private hosts, where (like go-containerregistry) plain HTTP is tried after HTTPS. */
export function isLocalRegistry(registry: string): boolean {
  const host = registry.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  return (
    host === "localhost" ||
    host === "::1" ||
    /^127\./.test(host) ||
    /^10\./.test(host) ||
    /^192\.168\./.test(host) ||
    /^172\.(1[6-9]|2[0-9]|3[01])\./.test(host)
  );
}

/**
 * The schemes a registry is pinged with, in order. Neither insecure nor local: HTTPS only. Insecure or
 * local: HTTPS, then plain HTTP, as go-containerregistry does — except an insecure registry named with an
 * explicit port, which is tried over plain HTTP first. With a port both schemes address the same socket,
 * where only one of the two protocols can answer; trying HTTPS first against a plain-HTTP registry costs
 * a secure context (~50 ms of CPU when SSL_CERT_DIR holds a CA bundle) and a failed handshake on every
 * build. A TLS server answers the plain request with 400 or closes it, and HTTPS follows. The ping
 * carries no credentials, so the order exposes nothing.
 */
export function pingSchemes(registry: string, insecure: boolean): ("https" | "http")[] {
  if (insecure && namedWithPort(registry)) return ["http", "https"];
  return insecure || isLocalRegistry(registry) ? ["https", "http"] : ["https"];
}

interface AuthState {
  challenge: Challenge | undefined;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/**
 * One registry endpoint: scheme detection (ping), authentication (anonymous, Basic, Bearer token
 * with scope tracking, OAuth2 refresh tokens) and redirects without credentials. Holds per-client
 * state only (token cache, credentials cache), never module-level state.
 */
export class RegistryHost {
  readonly registry: string;
  private readonly dispatcher: Dispatcher;
  private readonly keychain: Keychain;
  private readonly insecure: boolean;
  private readonly userAgent: string;
  /** The base URL once the scheme is settled (by the ping, or by a first request that got an answer). */
  private settled: Promise<URL> | undefined;
  private readonly auth: AuthState = { challenge: undefined };
  private readonly tokens = new Map<string, Promise<CachedToken>>();
  private readonly creds = new Map<string, Promise<Credentials | undefined>>();

  constructor(registry: string, dispatcher: Dispatcher, keychain: Keychain, insecure: boolean, userAgent: string) {
    this.registry = registry;
    this.dispatcher = dispatcher;
    this.keychain = keychain;
    this.insecure = insecure;
    this.userAgent = userAgent;
  }

  /** The base URL (`https://host/` or `http://host/`) after the ping, pinging once if needed. */
  base(operation: string, signal?: AbortSignal): Promise<URL> {
    if (this.settled === undefined) {
      const p = this.ping(operation, signal);
      this.settled = p;
      p.catch(() => {
        if (this.settled === p) this.settled = undefined;
      });
    }
    return this.settled;
  }

  private async ping(operation: string, signal?: AbortSignal): Promise<URL> {
    const schemes = pingSchemes(this.registry, this.insecure);
    let lastError: unknown;
    let httpError: unknown;
    for (const [i, scheme] of schemes.entries()) {
      const base = new URL(`${scheme}://${this.registry}/`);
      try {
        const res = await request(new URL("/v2/", base), {
          method: "GET",
          headers: { "user-agent": this.userAgent },
          dispatcher: this.dispatcher,
          ...(signal ? { signal } : {}),
        });
        if (res.statusCode === 401) {
          const challenges = parseWwwAuthenticate(res.headers["www-authenticate"]);
          this.auth.challenge =
            challenges.find((c) => c.scheme === "bearer") ?? challenges.find((c) => c.scheme === "basic");
          await res.body.dump();
          return base;
        }
        if (res.statusCode === 400 && scheme === "http") {
          await res.body.dump();
          if (i < schemes.length - 1) continue; // plain HTTP to a TLS port: try HTTPS next
          throw new RegistryError(
            "REGISTRY_UNREACHABLE",
            `${operation} ${this.registry}: the registry answered plain HTTP with 400; it probably speaks HTTPS, so do not mark it insecure`,
            { registry: this.registry, status: 400 },
          );
        }
        if (res.statusCode >= 500 || res.statusCode === 429) {
          throw await unexpected({ ...res, status: res.statusCode, url: base }, operation, this.registry, undefined);
        }
        await res.body.dump();
        return base;
      } catch (e) {
        if (e instanceof RegistryError) throw e;
        if (signal?.aborted === true) throw e;
        lastError = e;
        if (scheme === "http") httpError = e;
        // A certificate problem on a local (not insecure) registry is reported, not downgraded.
        if (!this.insecure && CERT_ERRORS.test(errCode(e))) break;
        if (refusedOnItsPort(this.registry, e)) break;
      }
    }
    // HTTPS found a plain-HTTP server after plain HTTP failed: that failure (e.g. a connection the
    // registry dropped while restarting) is the one to report, and it may be retried.
    const notTls = /WRONG_VERSION_NUMBER|wrong version number/i.test(`${errCode(lastError)} ${String(lastError)}`);
    throw this.networkError(operation, undefined, notTls && httpError !== undefined ? httpError : lastError);
  }

  /** Wraps a transport failure into a RegistryError naming the registry (and a TLS hint when relevant). */
  networkError(operation: string, repository: string | undefined, e: unknown): RegistryError {
    if (e instanceof KilnError) return e as RegistryError;
    const code = errCode(e);
    const msg = redactText(e instanceof Error ? e.message : String(e));
    const hint = CERT_ERRORS.test(code)
      ? "; trust its CA with --registry-certificate, or use --skip-tls-verify"
      : code === "EPROTO" || /wrong version number/i.test(msg)
        ? "; if the registry speaks plain HTTP use --insecure / --insecure-registry"
        : code === "UND_ERR_DESTROYED" || code === "UND_ERR_CLOSED"
          ? "; the RegistryClient was closed, and layers of an image it pulled can only be read while it is open"
          : "";
    return new RegistryError(
      "REGISTRY_UNREACHABLE",
      `${operation} ${this.where(repository)}: cannot talk to the registry: ${msg}${code && !msg.includes(code) ? ` (${code})` : ""}${hint}`,
      { ...this.details(repository), cause: e },
    );
  }

  private credentials(repository: string | undefined): Promise<Credentials | undefined> {
    const key = repository ?? "";
    let p = this.creds.get(key);
    if (p === undefined) {
      p = this.keychain.resolve(this.registry, repository);
      this.creds.set(key, p);
    }
    return p;
  }

  /**
   * The Authorization header for a request. `refused`: the header a 401 just refused; a token is then
   * fetched anew, once for all the requests it was refused to (a revoked token refused to 16 parallel
   * uploads is replaced by one fetch, not 16).
   */
  private async authorization(
    req: HostRequest,
    scopes: readonly string[],
    refused?: string,
  ): Promise<string | undefined> {
    const ch = this.auth.challenge;
    if (ch === undefined) return undefined;
    const creds = await this.credentials(req.repository);
    if (ch.scheme === "basic") {
      if (!hasCredentials(creds) || creds.username === undefined) return undefined;
      return `Basic ${Buffer.from(`${creds.username}:${creds.password ?? ""}`).toString("base64")}`;
    }
    if (ch.scheme !== "bearer") return undefined;
    if (creds?.registryToken) return `Bearer ${creds.registryToken}`;
    const key = [...scopes].join(" ");
    const cached = this.tokens.get(key);
    if (cached !== undefined) {
      // Concurrent requests share one in-flight token fetch.
      const t = await cached.catch(() => undefined);
      const header = t !== undefined && t.expiresAt > Date.now() ? `Bearer ${t.token}` : undefined;
      if (header !== undefined && header !== refused) return header;
      if (this.tokens.get(key) !== cached) return this.authorization(req, scopes, refused);
    }
    const p = this.fetchToken(req, ch, scopes, creds);
    this.tokens.set(key, p);
    p.catch(() => {
      if (this.tokens.get(key) === p) this.tokens.delete(key);
    });
    return `Bearer ${(await p).token}`;
  }

  private async fetchToken(
    req: HostRequest,
    ch: Challenge,
    scopes: readonly string[],
    creds: Credentials | undefined,
  ): Promise<CachedToken> {
    const realm = ch.params.realm;
    if (realm === undefined) {
      throw new RegistryError(
        "REGISTRY_AUTH_FAILED",
        `${req.operation} ${this.where(req.repository)}: bearer challenge without a realm; the registry's auth is misconfigured`,
        this.details(req.repository),
      );
    }
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm);
    } catch (e) {
      throw new RegistryError(
        "REGISTRY_AUTH_FAILED",
        `${req.operation} ${this.where(req.repository)}: invalid token realm`,
        {
          ...this.details(req.repository),
          cause: e,
        },
      );
    }
    const service = ch.params.service;
    const sig = req.signal ? { signal: req.signal } : {};
    let res: Dispatcher.ResponseData | undefined;
    try {
      if (creds?.identityToken) {
        const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: creds.identityToken });
        if (service !== undefined) form.set("service", service);
        form.set("client_id", "kiln");
        if (scopes.length > 0) form.set("scope", scopes.join(" "));
        res = await request(realmUrl, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", "user-agent": this.userAgent },
          body: form.toString(),
          dispatcher: this.dispatcher,
          ...sig,
        });
        if (res.statusCode === 404 || (res.statusCode >= 300 && res.statusCode < 400)) {
          // Not every token server implements OAuth2: fall back to GET (which follows a moved realm).
          await res.body.dump();
          res = undefined;
        }
      }
      if (res === undefined) {
        const u = new URL(realmUrl);
        if (service !== undefined) u.searchParams.set("service", service);
        for (const s of scopes) u.searchParams.append("scope", s);
        const headers: Record<string, string> = { "user-agent": this.userAgent };
        if (creds?.username !== undefined && creds.username !== "") {
          headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password ?? ""}`).toString("base64")}`;
        } else if (creds?.identityToken) {
          headers.authorization = `Basic ${Buffer.from(`<token>:${creds.identityToken}`).toString("base64")}`;
        }
        res = await this.tokenGet(u, headers, sig);
      }
    } catch (e) {
      throw this.networkError(`${req.operation} (token server ${redactUrl(realmUrl)})`, req.repository, e);
    }
    if (res.statusCode !== 200) {
      throw await unexpected(
        { ...res, status: res.statusCode, url: realmUrl },
        `${req.operation} (token server ${redactUrl(realmUrl)})`,
        this.registry,
        req.repository,
      );
    }
    const authFailed = (what: string): RegistryError =>
      new RegistryError(
        "REGISTRY_AUTH_FAILED",
        `${req.operation} ${this.where(req.repository)}: token server ${redactUrl(realmUrl)} ${what}`,
        this.details(req.repository),
      );
    // A token answer is a few KiB; a server streaming more is refused, not buffered.
    const text = await readLimited(res.body, MAX_TOKEN_ANSWER_BYTES, () =>
      authFailed(`answered more than ${MAX_TOKEN_ANSWER_BYTES} bytes`),
    ).catch((e: unknown) => {
      throw e instanceof KilnError || req.signal?.aborted === true
        ? e
        : this.networkError(`${req.operation} (token server ${redactUrl(realmUrl)})`, req.repository, e);
    });
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      parsed = JSON.parse(text.toString("utf8")) as typeof parsed;
    } catch {
      // No cause: JSON.parse's message quotes the text around the mistake, which may be the token.
      throw authFailed("answered invalid JSON");
    }
    const token =
      typeof parsed.access_token === "string" && parsed.access_token !== ""
        ? parsed.access_token
        : typeof parsed.token === "string"
          ? parsed.token
          : "";
    if (token === "") throw authFailed("answered no token");
    const expiresIn = typeof parsed.expires_in === "number" && parsed.expires_in >= 60 ? parsed.expires_in : 60;
    // Refresh a little early so a token does not expire in flight.
    return { token, expiresAt: Date.now() + (expiresIn - 10) * 1000 };
  }

  /**
   * The token GET, following up to {@link MAX_REDIRECTS} redirects (a realm moved, or `http://` sent on to
   * `https://`; Docker's client follows them too). Credentials go only to the realm's own host and never
   * over a downgrade to plain HTTP.
   */
  private async tokenGet(
    start: URL,
    headers: Record<string, string>,
    sig: { signal?: AbortSignal },
  ): Promise<Dispatcher.ResponseData> {
    let url = start;
    for (let hops = 0; ; hops++) {
      const sameOrigin = url.host === start.host && (url.protocol === start.protocol || url.protocol === "https:");
      const h = sameOrigin ? headers : { "user-agent": headers["user-agent"] ?? this.userAgent };
      const res = await request(url, { method: "GET", headers: h, dispatcher: this.dispatcher, ...sig });
      const loc = header(res.headers, "location");
      if (![301, 302, 303, 307, 308].includes(res.statusCode) || loc === undefined || hops >= MAX_REDIRECTS) return res;
      await res.body.dump();
      try {
        url = new URL(loc, url);
      } catch {
        return res; // reported as the token server's unexpected answer
      }
    }
  }

  /**
   * Sends a request with the right credentials. A 401 answer triggers one re-authentication (a new
   * or expired-token challenge; missing scopes are added at the front) and one replay; a 401 to a
   * request sent without credentials (the registry's first, see {@link RegistryHost.firstRequest})
   * only brings the challenge and is not counted.
   */
  async request(req: HostRequest): Promise<HostResponse> {
    if (this.settled === undefined && !/^https?:\/\//.test(req.url)) {
      const res = await this.firstRequest(req);
      if (res !== undefined) return res;
    }
    let base: URL;
    try {
      base = await this.base(req.operation, req.signal);
    } catch (e) {
      throw this.forRequest(e, req);
    }
    return this.requestAt(base, req);
  }

  /**
   * The scheme check is shared by every request to the registry, so its failure names the registry only;
   * each request that meets it reports it with its own operation and repository (same code, status and
   * cause, so retries decide as before).
   */
  private forRequest(e: unknown, req: HostRequest): unknown {
    if (!(e instanceof RegistryError) || e.repository !== undefined || req.repository === undefined) return e;
    const at = e.message.indexOf(`${this.registry}: `);
    const detail = at >= 0 ? e.message.slice(at + this.registry.length + 2) : e.message;
    return new RegistryError(e.code, `${req.operation} ${this.registry}/${req.repository}: ${detail}`, {
      registry: this.registry,
      repository: req.repository,
      ...(e.status !== undefined ? { status: e.status } : {}),
      ...(e.ociCode !== undefined ? { ociCode: e.ociCode } : {}),
      ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}),
      cause: e.cause ?? e,
    });
  }

  /**
   * A request made before the registry's scheme is known is its own ping: it is sent with the first
   * scheme of {@link pingSchemes}, and its answer settles the scheme (a 401 carries the challenge that
   * `GET /v2/` would have given). That saves the `/v2/` round trip of a registry without auth, and costs
   * a registry with auth nothing: its first request brings the challenge instead of the ping. A
   * transport failure, or plain HTTP answered with 400 while HTTPS is still to be tried, leaves the
   * decision to the ping (undefined), which reports unreachable registries and certificate problems
   * as before; the request is then sent again (every request body can be re-opened). A refused
   * connection to a registry named with a port is thrown as it is (retryable; see refusedOnItsPort).
   */
  private async firstRequest(req: HostRequest): Promise<HostResponse | undefined> {
    const schemes = pingSchemes(this.registry, this.insecure);
    const base = new URL(`${schemes[0] ?? "https"}://${this.registry}/`);
    let res: HostResponse;
    try {
      res = await this.requestAt(base, req);
    } catch (e) {
      if (req.signal?.aborted === true || refusedOnItsPort(this.registry, e)) throw e;
      return undefined;
    }
    if (res.status === 400 && base.protocol === "http:" && schemes.length > 1) {
      await res.body.dump();
      return undefined;
    }
    this.settled ??= Promise.resolve(base);
    return res;
  }

  private async requestAt(base: URL, req: HostRequest): Promise<HostResponse> {
    const url = /^https?:\/\//.test(req.url) ? new URL(req.url) : new URL(req.url, base);
    let scopes = [...req.scopes];
    let refused: string | undefined;
    for (let reauths = 0, rounds = 0; ; rounds++) {
      const auth = await this.authorization(req, scopes, refused);
      const res = await this.send(req, url, base, auth);
      if (res.status !== 401) return res;
      if (auth !== undefined && reauths++ > 0) return res;
      // Whatever the answers, a few 401 rounds are the most that can help (a loop of them is a
      // registry and credentials that do not fit together, e.g. Basic auth with only a token).
      if (rounds >= MAX_AUTH_ROUNDS) return res;
      // A 401 from where a redirect led (a storage or CDN host) is not the registry's challenge: its
      // realm must never get the registry's credentials, nor replace the registry's own challenge.
      if (res.url.host !== base.host) return res;
      const challenges = parseWwwAuthenticate(res.headers["www-authenticate"]);
      const ch = challenges.find((c) => c.scheme === "bearer") ?? challenges.find((c) => c.scheme === "basic");
      if (ch === undefined) return res;
      const creds = await this.credentials(req.repository);
      const before = this.auth.challenge;
      this.auth.challenge = ch;
      const scope = ch.params.scope;
      const newScopes = scope !== undefined ? scope.split(" ").filter((s) => s !== "" && !scopes.includes(s)) : [];
      const changed = before?.scheme !== ch.scheme || before.params.realm !== ch.params.realm;
      // A Basic challenge again to the credentials just sent cannot be cured by a retry.
      if (ch.scheme === "basic" && auth !== undefined && !changed) return res;
      // Basic auth needs a username: no credentials, or only a token, cannot answer it.
      if (ch.scheme === "basic" && (!hasCredentials(creds) || creds.username === undefined)) return res;
      await res.body.dump();
      scopes = [...newScopes, ...scopes];
      // A token that was sent and refused is fetched anew; the first token (after a request sent
      // without credentials) comes from the shared cache like any other.
      refused = auth;
    }
  }

  private async send(req: HostRequest, start: URL, base: URL, auth: string | undefined): Promise<HostResponse> {
    let url = start;
    for (let hops = 0; ; hops++) {
      const sameHost = url.host === base.host;
      const headers: Record<string, string> = { "user-agent": this.userAgent, ...req.headers };
      if (auth !== undefined && sameHost) headers.authorization = auth;
      let res: Dispatcher.ResponseData;
      // Opened before the request: a body whose source cannot be read (a spooled layer gone, a disk
      // error) is not the registry's failure, and is not reported or retried as one.
      const body =
        req.body === undefined || hops > 0
          ? undefined
          : req.body instanceof Uint8Array
            ? req.body
            : await req.body().catch((e: unknown) => {
                throw this.sourceError(req.operation, req.repository, e);
              });
      try {
        res = await request(url, {
          method: req.method,
          headers,
          dispatcher: this.dispatcher,
          ...(body !== undefined ? { body } : {}),
          ...(req.signal ? { signal: req.signal } : {}),
        });
      } catch (e) {
        if (body !== undefined && !(body instanceof Uint8Array)) body.destroy();
        if (e instanceof KilnError) throw e;
        if (req.signal?.aborted) throw e;
        // A body shorter or longer than its declared size is what kiln sends, not the network.
        if (errCode(e) === "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH")
          throw this.sourceError(req.operation, req.repository, e);
        throw this.networkError(req.operation, req.repository, e);
      }
      // A request body the registry refused must not keep its source (e.g. a blob GET) open.
      if (body !== undefined && !(body instanceof Uint8Array) && res.statusCode >= 300 && !body.readableEnded) {
        body.destroy();
      }
      const location = res.headers.location;
      const loc = Array.isArray(location) ? location[0] : location;
      if (
        req.followRedirects === true &&
        (req.method === "GET" || req.method === "HEAD") &&
        [301, 302, 303, 307, 308].includes(res.statusCode) &&
        loc !== undefined
      ) {
        await res.body.dump();
        const next = this.locationUrl(loc, url, req.operation, req.repository, res.statusCode);
        if (hops >= MAX_REDIRECTS) throw this.tooManyRedirects(req, res.statusCode, next);
        url = next;
        continue;
      }
      return { status: res.statusCode, headers: res.headers, body: res.body, url };
    }
  }

  /**
   * The error for what is to be sent that could not be read (a spooled layer gone, a disk error): never
   * the registry's failure, nor retried as one. A KilnError (e.g. from a registry the blob streams from)
   * is kept as it is.
   */
  sourceError(operation: string, repository: string | undefined, e: unknown): KilnError {
    if (e instanceof KilnError) return e;
    return new KilnError(
      "PUSH_SOURCE_FAILED",
      `${operation} ${this.where(repository)}: cannot read what is to be sent (a local failure, not the registry's): ${errorMessage(e)}`,
      { cause: e },
    );
  }

  /** The error for a redirect chain longer than {@link MAX_REDIRECTS} (a 3xx status: never retried). */
  private tooManyRedirects(req: HostRequest, status: number, next: URL): RegistryError {
    return new RegistryError(
      "REGISTRY_TOO_MANY_REDIRECTS",
      `${req.operation} ${this.where(req.repository)}: too many redirects (more than ${MAX_REDIRECTS}; the last answer was ${status} to ${redactUrl(next)}); check the registry address or a proxy in front of it`,
      { ...this.details(req.repository), status },
    );
  }

  /** Resolves a (possibly relative) `Location` header against the URL that answered it. */
  resolveLocation(res: HostResponse, what: string, repository: string): URL {
    const loc = header(res.headers, "location");
    if (loc === undefined) {
      throw new RegistryError(
        "REGISTRY_PROTOCOL_ERROR",
        `${what} ${this.registry}/${repository}: registry answered ${res.status} without a Location header`,
        { registry: this.registry, repository, status: res.status },
      );
    }
    return this.locationUrl(loc, res.url, what, repository, res.status);
  }

  /** The registry and, when there is one, the repository (`reg/repo`), for messages. */
  private where(repository: string | undefined): string {
    return repository !== undefined ? `${this.registry}/${repository}` : this.registry;
  }

  /** The registry and repository details of a RegistryError. */
  private details(repository: string | undefined): { registry: string; repository?: string } {
    return { registry: this.registry, ...(repository !== undefined ? { repository } : {}) };
  }

  /** `loc` (a Location header) against `base`; a value that is no URL is the registry's protocol error. */
  private locationUrl(loc: string, base: URL, operation: string, repository: string | undefined, status: number): URL {
    try {
      return new URL(loc, base);
    } catch {
      throw new RegistryError(
        "REGISTRY_PROTOCOL_ERROR",
        `${operation} ${this.where(repository)}: registry answered ${status} with a Location header that is not a URL: ${JSON.stringify(redactText(loc).slice(0, 200))}`,
        { ...this.details(repository), status },
      );
    }
  }
}
