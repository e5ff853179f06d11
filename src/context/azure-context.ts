import { createHmac } from "node:crypto";
import type { Readable } from "node:stream";
import { KilnError } from "../common/errors.js";
import { httpGet } from "./http-fetch.js";
import type { ProxyEnv } from "./proxy.js";

/** Azure settings: the account key and an optional endpoint override (emulators, private endpoints). */
export interface AzureEnv {
  /** `AZURE_STORAGE_ACCESS_KEY` (base64), like kaniko. */
  accessKey?: string | undefined;
  /**
   * `BlobEndpoint=` of `AZURE_STORAGE_CONNECTION_STRING` (the Azure tools' convention), e.g. azurite's
   * `http://127.0.0.1:10000/devstoreaccount1`: requests go there instead of the URL's host.
   */
  blobEndpoint?: string | undefined;
  /** `HTTP(S)_PROXY`/`NO_PROXY`. */
  proxy?: ProxyEnv | undefined;
}

/** x-ms-version sent; old enough for every Azure cloud and emulator that supports shared-key auth. */
const API_VERSION = "2021-08-06";

/** Reads `BlobEndpoint` (and `AccountKey`) out of an Azure Storage connection string. */
export function parseConnectionString(cs: string): { blobEndpoint?: string; accountKey?: string } {
  const out: { blobEndpoint?: string; accountKey?: string } = {};
  for (const part of cs.split(";")) {
    const i = part.indexOf("=");
    if (i <= 0) continue;
    const k = part.slice(0, i).trim().toLowerCase();
    const v = part.slice(i + 1).trim();
    if (k === "blobendpoint") out.blobEndpoint = v;
    if (k === "accountkey") out.accountKey = v;
  }
  return out;
}

/**
 * Shared Key signature of a Blob service request (Azure Storage "Authorize with Shared Key", version
 * 2015-02-21+ string-to-sign; a GET unless `request` says otherwise): the `Authorization` header value.
 */
export function sharedKeyAuthorization(
  account: string,
  key: string,
  url: URL,
  xmsHeaders: Record<string, string>,
  request: { method?: string; contentLength?: number; contentType?: string } = {},
): string {
  const canonHeaders = Object.keys(xmsHeaders)
    .map((k) => k.toLowerCase())
    .sort()
    .map((k) => `${k}:${(xmsHeaders[k] ?? "").trim()}\n`)
    .join("");
  let canonResource = `/${account}${url.pathname}`;
  const params = [...url.searchParams.keys()].map((k) => k.toLowerCase()).sort();
  for (const k of new Set(params)) canonResource += `\n${k}:${url.searchParams.getAll(k).sort().join(",")}`;
  // VERB, Content-Encoding, -Language, -Length (empty when 0), -MD5, -Type, Date, If-Modified-Since,
  // If-Match, If-None-Match, If-Unmodified-Since, Range (x-ms-date is used instead of Date).
  const length = request.contentLength ? String(request.contentLength) : "";
  const fields = [request.method ?? "GET", "", "", length, "", request.contentType ?? "", "", "", "", "", "", ""];
  const stringToSign = fields.join("\n") + "\n" + canonHeaders + canonResource;
  const sig = createHmac("sha256", Buffer.from(key, "base64")).update(stringToSign, "utf8").digest("base64");
  return `SharedKey ${account}:${sig}`;
}

/** Streams an Azure blob with shared-key auth (`AZURE_STORAGE_ACCESS_KEY`), like kaniko's azureblob context. */
export async function openAzureBlob(
  spec: { url: string; account: string; container: string; blob: string },
  env: AzureEnv,
  maxBytes: number,
  now: Date,
  signal?: AbortSignal,
): Promise<Readable> {
  if (!env.accessKey) {
    throw new KilnError(
      "CONTEXT_AUTH",
      `Azure blob context ${spec.account}/${spec.container}/${spec.blob}: AZURE_STORAGE_ACCESS_KEY is not set (kaniko's Azure context uses shared-key auth)`,
    );
  }
  const blobPath = spec.blob
    .split("/")
    .map((s) => encodeURIComponent(s))
    .join("/");
  const base = env.blobEndpoint ?? `https://${new URL(spec.url).host}`;
  const url = new URL(`${base.replace(/\/+$/, "")}/${encodeURIComponent(spec.container)}/${blobPath}`);
  const xms = { "x-ms-date": now.toUTCString(), "x-ms-version": API_VERSION };
  const headers = { ...xms, Authorization: sharedKeyAuthorization(spec.account, env.accessKey, url, xms) };
  return httpGet(url.toString(), {
    headers,
    maxBytes,
    what: `build context ${spec.account}/${spec.container}/${spec.blob} from`,
    proxy: env.proxy,
    ...(signal ? { signal } : {}),
  });
}
