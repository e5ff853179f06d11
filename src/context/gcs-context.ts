import type { Readable } from "node:stream";
import { httpGet } from "./http-fetch.js";
import type { ProxyEnv } from "./proxy.js";

/** Where GCS requests go and how they authenticate. */
export interface GcsEnv {
  /**
   * `STORAGE_EMULATOR_HOST` (the Google SDKs' convention): base URL of a GCS-compatible server, e.g.
   * `http://127.0.0.1:4443`. Default `https://storage.googleapis.com`.
   */
  emulatorHost?: string | undefined;
  /** An OAuth2 access token (`GOOGLE_OAUTH_ACCESS_TOKEN` / `CLOUDSDK_AUTH_ACCESS_TOKEN`); none means anonymous. */
  accessToken?: string | undefined;
  /** `HTTP(S)_PROXY`/`NO_PROXY`. */
  proxy?: ProxyEnv | undefined;
}

/** The JSON API media-download URL of an object. */
export function gcsObjectUrl(bucket: string, object: string, env: GcsEnv): string {
  let base = env.emulatorHost ?? "https://storage.googleapis.com";
  if (!/^https?:\/\//i.test(base)) base = `http://${base}`;
  return `${base.replace(/\/+$/, "")}/storage/v1/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(object)}?alt=media`;
}

/** Streams `gs://bucket/object` through the GCS JSON API (`GET …/o/<object>?alt=media`). */
export async function openGcsObject(
  bucket: string,
  object: string,
  env: GcsEnv,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<Readable> {
  const headers: Record<string, string> = {};
  if (env.accessToken) headers.Authorization = `Bearer ${env.accessToken}`;
  return httpGet(gcsObjectUrl(bucket, object, env), {
    headers,
    maxBytes,
    what: `build context gs://${bucket}/${object} via`,
    proxy: env.proxy,
    ...(signal ? { signal } : {}),
  });
}
