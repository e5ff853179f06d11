import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import type { Duplex } from "node:stream";
import * as tls from "node:tls";
import { Agent, type AgentConnectOpts } from "agent-base";
import { errorMessage, KilnError } from "../common/errors.js";
import type { ProxyEnv } from "../common/proxy-env.js";
import { basicAuthorization } from "../common/url-userinfo.js";

/** How long the proxy may take to connect and answer a CONNECT (the S3 client sets no timeout of its own). */
export const TUNNEL_TIMEOUT_MS = 30_000;

/** The most a proxy's answer to CONNECT may hold before its blank line. */
const MAX_CONNECT_ANSWER_BYTES = 16 * 1024;

/**
 * Whether `NO_PROXY` names `host` (and `port`), with the rules undici applies to the other contexts and
 * registries: `*` alone matches every host; entries split on commas and spaces; an entry matches the host
 * itself and its subdomains (a leading `.` or `*.` is dropped); an entry with `:port` matches that port
 * only (`:0`: any port). No CIDR ranges, as in undici.
 */
export function noProxyMatches(noProxy: string | undefined, host: string, port: number): boolean {
  const value = (noProxy ?? "").trim();
  if (value === "*") return true;
  const name = host.toLowerCase().replace(/^\[|\]$/g, "");
  for (const raw of value.split(/[,\s]+/)) {
    if (raw === "" || raw === "*") continue;
    const m = /^(.*?)(?::(\d+))?$/.exec(raw.toLowerCase()) as RegExpExecArray;
    const entry = (m[1] ?? "").replace(/^\*?\./, "").replace(/^\[|\]$/g, "");
    const entryPort = m[2] !== undefined ? Number(m[2]) : 0;
    if (entryPort !== 0 && entryPort !== port) continue;
    if (entry !== "" && (name === entry || name.endsWith(`.${entry}`))) return true;
  }
  return false;
}

/** A proxy to tunnel through: its URL without user info, and the Proxy-Authorization header of that info. */
export interface TunnelProxy {
  url: URL;
  authorization?: string;
}

/**
 * Parses a proxy setting (`host:port` alone means http://). Its user info becomes a Proxy-Authorization
 * header and never stays in the URL, which error messages may show.
 * @throws KilnError CONTEXT_FETCH when the setting is not a URL or its user info is not valid percent-encoding.
 */
export function tunnelProxy(setting: string): TunnelProxy {
  try {
    const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(setting) ? setting : `http://${setting}`);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`unsupported scheme ${url.protocol}`);
    const authorization = basicAuthorization(url, true);
    url.username = "";
    url.password = "";
    return authorization !== undefined ? { url, authorization } : { url };
  } catch (e) {
    const why = e instanceof URIError ? "its user info is not valid percent-encoding" : errorMessage(e);
    throw new KilnError("CONTEXT_FETCH", `the proxy setting for the S3 context is unusable: ${why}`);
  }
}

/**
 * Opens a CONNECT tunnel through `proxy` to the endpoint in `opts` (TLS over it for an https endpoint, with
 * the request's TLS options). Written here rather than taken from https-proxy-agent, which sets no time limit
 * on the proxy's answer (a proxy that never answers held the build, and its socket the process, for ever),
 * replays a refusal to the S3 client as if S3 had answered (reported as "UnknownError"), and prints the proxy
 * URL it was given with `DEBUG=*`. Rejects, with the socket destroyed, when the proxy does not connect or
 * answer within `timeoutMs` or refuses (a 407 says so).
 */
export async function openTunnel(proxy: TunnelProxy, opts: AgentConnectOpts, timeoutMs: number): Promise<Duplex> {
  const secureProxy = proxy.url.protocol === "https:";
  const proxyPort = Number(proxy.url.port) || (secureProxy ? 443 : 80);
  const proxyHost = proxy.url.hostname.replace(/^\[|\]$/g, "");
  const socket: net.Socket = secureProxy
    ? tls.connect({ host: proxyHost, port: proxyPort, ...(net.isIP(proxyHost) ? {} : { servername: proxyHost }) })
    : net.connect({ host: proxyHost, port: proxyPort });
  socket.setTimeout(timeoutMs);
  const host = opts.host ?? "";
  const target = `${net.isIPv6(host) ? `[${host}]` : host}:${opts.port}`;
  try {
    const status = await new Promise<number>((resolve, reject) => {
      let answer = Buffer.alloc(0);
      const done = (): void => {
        socket.off("data", onData).off("timeout", onTimeout).off("error", reject).off("close", onClose);
      };
      const fail = (e: Error): void => {
        done();
        reject(e);
      };
      const onData = (d: Buffer): void => {
        answer = Buffer.concat([answer, d]);
        const end = answer.indexOf("\r\n\r\n");
        if (end < 0) {
          if (answer.length > MAX_CONNECT_ANSWER_BYTES) fail(new Error("its answer to CONNECT is too long"));
          return;
        }
        done();
        // Nothing may be read before the tunnel's user (HTTP or TLS) takes the socket: it resumes it.
        socket.pause();
        if (answer.length > end + 4) socket.unshift(answer.subarray(end + 4));
        const line = answer.subarray(0, answer.indexOf("\r\n")).toString("latin1");
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(line);
        if (m === null) reject(new Error(`it answered CONNECT with ${JSON.stringify(line.slice(0, 60))}`));
        else resolve(Number(m[1]));
      };
      const onTimeout = (): void => fail(new Error(`no answer to CONNECT within ${timeoutMs / 1000} s`));
      const onClose = (): void => fail(new Error("it closed the connection before answering CONNECT"));
      socket.on("data", onData).on("timeout", onTimeout).on("error", reject).on("close", onClose);
      const auth = proxy.authorization !== undefined ? `Proxy-Authorization: ${proxy.authorization}\r\n` : "";
      socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth}\r\n`);
    });
    if (status !== 200) {
      const why = status === 407 ? ", proxy authentication required: check the user info in HTTP(S)_PROXY" : "";
      throw new Error(`it refused the tunnel to ${target} (HTTP ${status}${why})`);
    }
    socket.setTimeout(0);
    // Until the HTTP client or TLS takes the socket over (and listens for its errors), an error on it must
    // not go unhandled, which would end the process; afterwards its listeners get every error as well.
    socket.on("error", () => undefined);
    if (!opts.secureEndpoint) return socket;
    const { host: _h, port: _p, path: _path, ...tlsOpts } = opts as AgentConnectOpts & { path?: unknown };
    return tls.connect({ ...tlsOpts, socket, ...(net.isIP(host) ? {} : { servername: opts.servername ?? host }) });
  } catch (e) {
    socket.destroy();
    throw new Error(`the proxy ${proxy.url.host}: ${errorMessage(e)}`);
  }
}

/**
 * The Node agent for the AWS SDK's S3 requests when the environment names a proxy: each connection is
 * tunnelled through `HTTPS_PROXY` (an https endpoint; else `HTTP_PROXY`) or `HTTP_PROXY` (an http endpoint)
 * unless `NO_PROXY` names the endpoint, as the other contexts and registries are. The SDK's Node handler
 * has no proxy support. Undefined when no proxy is set: the SDK connects directly.
 * @throws KilnError CONTEXT_FETCH for an unusable proxy setting.
 */
export function s3ProxyAgents(
  proxy: ProxyEnv | undefined,
  timeoutMs = TUNNEL_TIMEOUT_MS,
): { httpAgent: http.Agent; httpsAgent: http.Agent } | undefined {
  const httpProxy = proxy?.httpProxy ?? "";
  const httpsProxy = proxy?.httpsProxy || httpProxy;
  if (httpsProxy === "") return undefined; // set whenever HTTP_PROXY is
  const agent = new EnvProxyAgent(
    httpProxy !== "" ? tunnelProxy(httpProxy) : undefined,
    httpsProxy !== "" ? tunnelProxy(httpsProxy) : undefined,
    proxy?.noProxy,
    timeoutMs,
  );
  return { httpAgent: agent, httpsAgent: agent };
}

/** Tunnels each connection (or hands it to Node's global agents where NO_PROXY says so). */
class EnvProxyAgent extends Agent {
  readonly #http: TunnelProxy | undefined;
  readonly #https: TunnelProxy | undefined;
  readonly #noProxy: string | undefined;
  readonly #timeoutMs: number;

  constructor(
    httpProxy: TunnelProxy | undefined,
    httpsProxy: TunnelProxy | undefined,
    noProxy: string | undefined,
    timeoutMs: number,
  ) {
    super({ keepAlive: true });
    this.#http = httpProxy;
    this.#https = httpsProxy;
    this.#noProxy = noProxy;
    this.#timeoutMs = timeoutMs;
  }

  override async connect(req: http.ClientRequest, opts: AgentConnectOpts): Promise<http.Agent | Duplex> {
    const secure = opts.secureEndpoint;
    const port = opts.port ?? (secure ? 443 : 80);
    const proxy = secure ? this.#https : this.#http;
    if (proxy === undefined || noProxyMatches(this.#noProxy, opts.host ?? "", port)) {
      return secure ? https.globalAgent : http.globalAgent;
    }
    const tunnel = await openTunnel(proxy, { ...opts, port }, this.#timeoutMs);
    req.once("socket", () => tunnel.resume());
    return tunnel;
  }
}
