import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";
import type { AwsCredentials } from "./aws-token.js";

/** One request to sign with AWS Signature Version 4 (no body). */
export interface AwsSignInput {
  method: string;
  url: URL;
  /** Extra headers to sign (names in any case); `host`, `x-amz-date` and the session token are added. */
  headers: Record<string, string>;
  region: string;
  service: string;
  credentials: AwsCredentials;
  date: Date;
}

type SourceData = string | ArrayBuffer | ArrayBufferView;

function bytes(data: SourceData): Buffer {
  if (typeof data === "string") return Buffer.from(data, "utf8");
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/** SHA-256 (or HMAC-SHA-256 with a key) from node:crypto, in the shape the signer asks for. */
class NodeSha256 {
  readonly #secret: SourceData | undefined;
  #hash: Hash | Hmac;

  constructor(secret?: SourceData) {
    this.#secret = secret;
    this.#hash = this.#fresh();
  }

  #fresh(): Hash | Hmac {
    return this.#secret === undefined ? createHash("sha256") : createHmac("sha256", bytes(this.#secret));
  }

  update(data: SourceData): void {
    this.#hash.update(bytes(data));
  }

  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#hash.digest()));
  }

  reset(): void {
    this.#hash = this.#fresh();
  }
}

/**
 * Signs a body-less request with AWS Signature Version 4 (the AWS SDK's own signer) and answers every
 * header it must carry (lower-case names: `host`, `x-amz-date`, `x-amz-security-token` when the
 * credentials have a session token, the given headers, and `authorization`).
 */
export async function signAwsRequest(r: AwsSignInput): Promise<Record<string, string>> {
  const signer = new SignatureV4({
    credentials: r.credentials,
    region: r.region,
    service: r.service,
    sha256: NodeSha256,
    // No x-amz-content-sha256 header: Google's STS replays exactly the headers it is given.
    applyChecksum: false,
  });
  const headers: Record<string, string> = { host: r.url.host };
  for (const [k, v] of Object.entries(r.headers)) headers[k.toLowerCase()] = v;
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of r.url.searchParams) {
    const prev = query[k];
    query[k] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v];
  }
  const signed = await signer.sign(
    {
      method: r.method,
      protocol: r.url.protocol,
      hostname: r.url.hostname,
      ...(r.url.port !== "" ? { port: Number(r.url.port) } : {}),
      path: r.url.pathname === "" ? "/" : r.url.pathname,
      query,
      headers,
    },
    { signingDate: r.date },
  );
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed.headers)) out[k.toLowerCase()] = v;
  return out;
}
