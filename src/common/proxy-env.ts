/**
 * The proxy settings in an environment: `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY`, upper case first, then the
 * lower-case spellings. The registry client, remote contexts and `ADD <url>` read them the same way.
 */
export interface ProxyEnv {
  httpProxy?: string | undefined;
  httpsProxy?: string | undefined;
  noProxy?: string | undefined;
}

/** The proxy settings in `env` (missing: undefined). */
export function proxyEnvFrom(env: Readonly<Record<string, string | undefined>>): ProxyEnv {
  return {
    httpProxy: env.HTTP_PROXY ?? env.http_proxy,
    httpsProxy: env.HTTPS_PROXY ?? env.https_proxy,
    noProxy: env.NO_PROXY ?? env.no_proxy,
  };
}
