// The CLI bundle's stand-in for undici's entry module: scripts/build-bundle.mjs resolves the bare
// specifier "undici" to this file. undici's index.js loads the whole library when imported (fetch,
// WebSocket, EventSource, cookies, mock agents, caches): ~25 ms of the ~90 ms `kiln version` takes on
// Node 24. kiln uses only the dispatchers, the connector, the redirect interceptor and `request`. This
// file loads just those from undici's own modules (undici 7 has no "exports" map; the lock file pins
// the version) and exports them under the names src/ imports. src/ and the unbundled dist/ keep the
// real entry module (and its types). test/cli/undici-lite.test.ts checks that every value src/ imports
// from "undici" is exported here and that `request` works through an Agent and the global dispatcher.
import Agent from "undici/lib/dispatcher/agent.js";
import EnvHttpProxyAgent from "undici/lib/dispatcher/env-http-proxy-agent.js";
import Dispatcher from "undici/lib/dispatcher/dispatcher.js";
import buildConnector from "undici/lib/core/connect.js";
import api from "undici/lib/api/index.js";
import errors from "undici/lib/core/errors.js";
import globalDispatcher from "undici/lib/global.js";
import redirect from "undici/lib/interceptor/redirect.js";

// The entry module gives every dispatcher request()/stream()/pipeline()/… this way; so do we.
Object.assign(Dispatcher.prototype, api);

/**
 * `request(url, opts)` as undici's entry module defines it, for the forms kiln uses: an absolute URL
 * (string or URL) and options without `path`; `opts.dispatcher` or else the global dispatcher.
 */
export function request(url, opts = {}) {
  if (opts.path !== undefined) throw new errors.InvalidArgumentError("undici-lite: opts.path is not supported");
  if (opts.agent !== undefined)
    throw new errors.InvalidArgumentError("unsupported opts.agent. Did you mean opts.client?");
  const u = url instanceof URL ? url : new URL(String(url));
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new errors.InvalidArgumentError("Invalid URL protocol: the URL must start with `http:` or `https:`.");
  }
  const dispatcher = opts.dispatcher ?? globalDispatcher.getGlobalDispatcher();
  return api.request.call(dispatcher, {
    ...opts,
    origin: u.origin,
    path: u.search ? `${u.pathname}${u.search}` : u.pathname,
    method: opts.method || (opts.body ? "PUT" : "GET"),
  });
}

export const interceptors = { redirect };
export { Agent, EnvHttpProxyAgent, Dispatcher, buildConnector };
