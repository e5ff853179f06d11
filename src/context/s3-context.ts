import { GetObjectCommand, S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { Readable } from "node:stream";
import { KilnError } from "../common/errors.js";
import type { ProxyEnv } from "../common/proxy-env.js";
import { s3ProxyAgents } from "./s3-proxy.js";

/** Environment the S3 context reads besides the AWS SDK's own chain (AWS_REGION, AWS_ACCESS_KEY_ID, profiles…). */
export interface S3Env {
  /** `S3_ENDPOINT`: a custom endpoint (MinIO, Ceph, s3rver…). */
  endpoint?: string | undefined;
  /** `S3_FORCE_PATH_STYLE=true`: bucket in the path instead of the host name. */
  forcePathStyle?: boolean;
  /** `AWS_REGION`/`AWS_DEFAULT_REGION`; kaniko's default chain. us-east-1 when unset and an endpoint is given. */
  region?: string | undefined;
  /** `HTTP(S)_PROXY`/`NO_PROXY`: the requests are tunnelled through the proxy (see s3-proxy.ts). */
  proxy?: ProxyEnv | undefined;
}

/**
 * Streams `s3://bucket/key` with the AWS SDK's default credential chain (env, shared config/credentials
 * files, SSO, web identity, container/instance metadata), like kaniko.
 */
export async function openS3Object(
  bucket: string,
  key: string,
  env: S3Env,
  signal?: AbortSignal,
): Promise<{ body: Readable; size?: number | undefined }> {
  const config: S3ClientConfig = {};
  if (env.endpoint) config.endpoint = env.endpoint;
  if (env.forcePathStyle) config.forcePathStyle = true;
  if (env.region) config.region = env.region;
  else if (env.endpoint) config.region = "us-east-1";
  const agents = s3ProxyAgents(env.proxy);
  if (agents) config.requestHandler = agents;
  const client = new S3Client(config);
  try {
    const out = await client.send(
      new GetObjectCommand({ Bucket: bucket, Key: key }),
      signal ? { abortSignal: signal } : {},
    );
    if (!(out.Body instanceof Readable))
      throw new KilnError("CONTEXT_FETCH", `s3://${bucket}/${key}: the response has no readable body`);
    const body = out.Body;
    body.once("close", () => {
      client.destroy();
      agents?.httpsAgent.destroy();
    });
    return { body, size: out.ContentLength };
  } catch (e) {
    client.destroy();
    agents?.httpsAgent.destroy();
    if (e instanceof KilnError) throw e;
    const name = e instanceof Error ? e.name : "Error";
    const msg = e instanceof Error ? e.message : String(e);
    throw new KilnError(
      "CONTEXT_FETCH",
      `build context s3://${bucket}/${key}: ${name}: ${msg} (check the bucket, the key, AWS credentials, S3_ENDPOINT, S3_FORCE_PATH_STYLE${agents ? " and HTTP(S)_PROXY" : ""})`,
    );
  }
}
