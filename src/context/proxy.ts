import { Agent, EnvHttpProxyAgent, type Dispatcher } from "undici";

/**
 * The proxy settings remote contexts are fetched through: `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` (or
 * their lower-case spellings), as the registry client and `ADD <url>` honour them. Empty or missing: none.
 */
export interface ProxyEnv {
  httpProxy?: string | undefined;
  httpsProxy?: string | undefined;
  noProxy?: string | undefined;
}

/** The proxy settings in `env` (upper case first, as the registry client reads them). */
export function proxyEnvFrom(env: Readonly<Record<string, string | undefined>>): ProxyEnv {
  return {
    httpProxy: env.HTTP_PROXY ?? env.http_proxy,
    httpsProxy: env.HTTPS_PROXY ?? env.https_proxy,
    noProxy: env.NO_PROXY ?? env.no_proxy,
  };
}

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
