import { Agent, EnvHttpProxyAgent, type Dispatcher } from "undici";
import type { ProxyEnv } from "../common/proxy-env.js";

export { proxyEnvFrom, type ProxyEnv } from "../common/proxy-env.js";

/** TLS options of a context fetch's connections (to the server, also when tunnelled through the proxy). */
export interface ContextTls {
  rejectUnauthorized?: boolean;
}

/**
 * The undici dispatcher for a context fetch: a plain Agent, or an EnvHttpProxyAgent when `proxy` names an
 * HTTP or HTTPS proxy (hosts in `noProxy` are reached directly). Built as the registry client builds its
 * own: the values are passed explicitly (never "" → undefined), so undici never reads `process.env`.
 */
export function contextDispatcher(proxy: ProxyEnv | undefined, tls: ContextTls = {}): Dispatcher {
  const httpProxy = proxy?.httpProxy ?? "";
  const httpsProxy = proxy?.httpsProxy ?? "";
  if (httpProxy === "" && httpsProxy === "") return new Agent({ connect: { ...tls } });
  return new EnvHttpProxyAgent({
    connect: { ...tls },
    requestTls: { ...tls },
    httpProxy,
    httpsProxy,
    noProxy: proxy?.noProxy ?? "",
  });
}
