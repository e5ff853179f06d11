import * as http from "node:http";
import * as https from "node:https";
import type { Duplex } from "node:stream";
import { Agent, type AgentConnectOpts } from "agent-base";
import { HttpsProxyAgent } from "https-proxy-agent";
import type { ProxyEnv } from "../common/proxy-env.js";

/**
 * Whether `NO_PROXY` names `host` (and `port`), with the rules undici applies to the other contexts and
 * registries: entries split on commas and spaces; `*` matches every host; an entry matches the host itself
 * and its subdomains (a leading `.` or `*.` is dropped); an entry with `:port` matches that port only.
 * No CIDR ranges, as in undici.
 */
export function noProxyMatches(noProxy: string | undefined, host: string, port: number): boolean {
  const name = host.toLowerCase().replace(/^\[|\]$/g, "");
  for (const raw of (noProxy ?? "").split(/[,\s]+/)) {
    if (raw === "") continue;
    if (raw === "*") return true;
    const m = /^(.*?)(?::(\d+))?$/.exec(raw.toLowerCase()) as RegExpExecArray;
    const entry = (m[1] ?? "").replace(/^\*?\./, "").replace(/^\[|\]$/g, "");
    if (m[2] !== undefined && Number(m[2]) !== port) continue;
    if (entry !== "" && (name === entry || name.endsWith(`.${entry}`))) return true;
  }
  return false;
}

/**
 * The Node agent for the AWS SDK's S3 requests when the environment names a proxy: each connection is
 * tunnelled (CONNECT) through `HTTPS_PROXY` (an https endpoint; else `HTTP_PROXY`) or `HTTP_PROXY` (an http
 * endpoint), unless `NO_PROXY` names the endpoint's host. The SDK's own Node handler has no proxy support;
 * https-proxy-agent makes the tunnel. Undefined when no proxy is set: the SDK connects directly.
 */
export function s3ProxyAgents(
  proxy: ProxyEnv | undefined,
): { httpAgent: http.Agent; httpsAgent: http.Agent } | undefined {
  const httpProxy = proxy?.httpProxy ?? "";
  const httpsProxy = proxy?.httpsProxy || httpProxy;
  if (httpProxy === "" && httpsProxy === "") return undefined;
  const agent = new EnvProxyAgent(httpProxy, httpsProxy, proxy?.noProxy);
  return { httpAgent: agent, httpsAgent: agent };
}

/**
 * The tunnelling agent for a proxy URL (`host:port` alone means http://). Its user info goes in a
 * Proxy-Authorization header, not in the URL the agent keeps: the agent's debug output (`DEBUG=*`) prints
 * that URL, and kiln's log redaction does not see it.
 */
function tunnelAgent(proxy: string): HttpsProxyAgent<string> {
  const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(proxy) ? proxy : `http://${proxy}`);
  const headers: Record<string, string> = {};
  if (url.username !== "" || url.password !== "") {
    const user = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    headers["Proxy-Authorization"] = `Basic ${Buffer.from(user).toString("base64")}`;
    url.username = "";
    url.password = "";
  }
  return new HttpsProxyAgent(url.toString(), { keepAlive: true, headers });
}

/** Picks the tunnel (or a direct connection) per request. */
class EnvProxyAgent extends Agent {
  readonly #http: HttpsProxyAgent<string> | undefined;
  readonly #https: HttpsProxyAgent<string> | undefined;
  readonly #noProxy: string | undefined;

  constructor(httpProxy: string, httpsProxy: string, noProxy: string | undefined) {
    super({ keepAlive: true });
    this.#http = httpProxy !== "" ? tunnelAgent(httpProxy) : undefined;
    this.#https = httpsProxy !== "" ? tunnelAgent(httpsProxy) : undefined;
    this.#noProxy = noProxy;
  }

  override connect(_req: http.ClientRequest, opts: AgentConnectOpts): http.Agent | Duplex {
    const secure = opts.secureEndpoint;
    const port = opts.port ?? (secure ? 443 : 80);
    const tunnel = secure ? this.#https : this.#http;
    if (tunnel === undefined || noProxyMatches(this.#noProxy, opts.host ?? "", port)) {
      return secure ? https.globalAgent : http.globalAgent;
    }
    return tunnel;
  }

  override destroy(): void {
    this.#http?.destroy();
    this.#https?.destroy();
    super.destroy();
  }
}
