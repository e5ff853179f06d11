import { readdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { X509Certificate } from "node:crypto";
import { createSecureContext, rootCertificates, type SecureContext } from "node:tls";
import { Agent, buildConnector, EnvHttpProxyAgent, type Dispatcher } from "undici";
import { proxyEnvFrom } from "../common/proxy-env.js";
import { KilnError } from "../common/errors.js";

/** Per-registry transport options (kiln maps its TLS/insecure flags onto these). */
export interface RegistryHostOptions {
  /** Talk plain HTTP to this registry. */
  insecure?: boolean;
  /** Accept any TLS certificate. */
  skipTlsVerify?: boolean;
  /** Extra CA certificate PEM files trusted for this registry. */
  caFiles?: string[];
  /** Client certificate and key (PEM file paths) for mutual TLS. */
  clientCert?: { cert: string; key: string };
}

function readPem(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw new KilnError("TLS_CONFIG_INVALID", `cannot read ${what} ${file}: ${(e as Error).message}`, { cause: e });
  }
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The distinct certificate blocks of PEM texts (bundles split; normalised line ends). */
function distinctCertificates(pems: Iterable<string>): string[] {
  const seen = new Set<string>();
  for (const pem of pems) for (const block of pem.replace(/\r\n/g, "\n").match(PEM_BLOCK) ?? []) seen.add(block);
  return [...seen];
}

function parsable(pem: string): boolean {
  try {
    new X509Certificate(pem);
    return true;
  } catch {
    return false;
  }
}

/**
 * Extra CA PEMs from `SSL_CERT_FILE` and every file in `SSL_CERT_DIR` (unreadable entries skipped), one
 * entry per distinct certificate: Debian's /etc/ssl/certs holds each CA three times (its file, a hash
 * symlink and the bundle), and every duplicate would be parsed again.
 */
export function envCaCertificates(env: Record<string, string | undefined>): string[] {
  const out: string[] = [];
  const file = env.SSL_CERT_FILE;
  if (file) {
    try {
      out.push(readFileSync(file, "utf8"));
    } catch {
      // a missing SSL_CERT_FILE is ignored, as OpenSSL does
    }
  }
  for (const dir of (env.SSL_CERT_DIR ?? "").split(":").filter((d) => d !== "")) {
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names.sort()) {
      const p = path.join(dir, n);
      try {
        if (!statSync(p).isFile()) continue;
        const text = readFileSync(p, "utf8");
        if (text.includes("-----BEGIN CERTIFICATE-----")) out.push(text);
      } catch {
        // unreadable entry: skip
      }
    }
  }
  return distinctCertificates(out);
}

/**
 * TLS connect options for one registry. Extra CAs (Node's roots kept) and a client certificate go into
 * one secure context built here, once per dispatcher: passed as plain `ca`/`cert` options, Node would
 * parse every certificate again on each connection (hundreds of CAs from SSL_CERT_DIR cost ~200 ms per
 * handshake on this class of machine).
 */
export function tlsOptions(
  opts: RegistryHostOptions,
  envCas: readonly string[],
): { rejectUnauthorized: boolean; secureContext?: SecureContext } {
  const extra = [...envCas, ...(opts.caFiles ?? []).map((f) => readPem(f, "registry CA certificate"))];
  const client = opts.clientCert
    ? {
        cert: readPem(opts.clientCert.cert, "registry client certificate"),
        key: readPem(opts.clientCert.key, "registry client key"),
      }
    : undefined;
  const rejectUnauthorized = opts.skipTlsVerify !== true;
  if (extra.length === 0 && client === undefined) return { rejectUnauthorized };
  const build = (cas: readonly string[]): SecureContext =>
    createSecureContext({
      ...(cas.length > 0 ? { ca: distinctCertificates([...rootCertificates, ...cas]) } : {}),
      ...(client ?? {}),
    });
  try {
    try {
      return { rejectUnauthorized, secureContext: build(extra) };
    } catch {
      // OpenSSL skips unparsable files of SSL_CERT_DIR: do the same, keep explicit --registry-certificate files
      const explicit = (opts.caFiles ?? []).map((f) => readPem(f, "registry CA certificate"));
      return { rejectUnauthorized, secureContext: build([...envCas.filter(parsable), ...explicit]) };
    }
  } catch (e) {
    throw new KilnError("TLS_CONFIG_INVALID", `invalid TLS certificate or key: ${(e as Error).message}`, { cause: e });
  }
}

/** What {@link tlsOptions} returns: the TLS part of a connection's options. */
export type TlsConnectOptions = ReturnType<typeof tlsOptions>;

/**
 * A connector that builds the TLS options only when the first https connection is made. Building the
 * secure context parses every CA of SSL_CERT_DIR (50-110 ms on this class of machine, measured): a
 * build against plain-HTTP registries, or one that never connects, must not pay it.
 */
function lazyTlsConnector(tls: () => TlsConnectOptions): buildConnector.connector {
  let plain: buildConnector.connector | undefined;
  let secure: buildConnector.connector | undefined;
  return (options, callback) => {
    if (options.protocol !== "https:") {
      plain ??= buildConnector({ timeout: CONNECT_TIMEOUT_MS });
      plain(options, callback);
      return;
    }
    try {
      secure ??= buildConnector({ ...tls(), timeout: CONNECT_TIMEOUT_MS });
    } catch (e) {
      callback(e instanceof Error ? e : new Error(String(e)), null);
      return;
    }
    secure(options, callback);
  };
}

/** undici's own default connect timeout, kept when kiln supplies the connector. */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Creates the undici dispatcher for one registry: an Agent with the registry's TLS options, or an
 * EnvHttpProxyAgent when `HTTP(S)_PROXY` is set in `env` (honouring `NO_PROXY`). `tls` is called at
 * most once: at once when the registry has its own CA or client certificate files (so a bad file fails
 * the build where it is configured) or a proxy is set, otherwise on the first https connection.
 */
export function createDispatcher(
  opts: RegistryHostOptions,
  env: Record<string, string | undefined>,
  tls: () => TlsConnectOptions,
): Dispatcher {
  const proxy = proxyEnvFrom(env);
  const httpProxy = proxy.httpProxy ?? "";
  const httpsProxy = proxy.httpsProxy ?? "";
  const eager = (opts.caFiles?.length ?? 0) > 0 || opts.clientCert !== undefined;
  if (httpProxy === "" && httpsProxy === "") {
    const connect = eager ? tls() : lazyTlsConnector(tls);
    return new Agent({ connect, keepAliveTimeout: 10_000, connections: 16 });
  }
  const t = tls();
  return new EnvHttpProxyAgent({
    connect: t,
    keepAliveTimeout: 10_000,
    connections: 16,
    requestTls: t,
    httpProxy,
    httpsProxy,
    noProxy: proxy.noProxy ?? "",
  });
}
