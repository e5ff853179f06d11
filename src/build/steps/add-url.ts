import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import path from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { EnvHttpProxyAgent, interceptors, request } from "undici";
import { KilnError } from "../../common/errors.js";
import { proxyEnvFrom } from "../../common/proxy-env.js";
import { basicAuthorization, percentDecoded } from "../../common/url-userinfo.js";
import { redactUrl } from "../../context/index.js";

/** A URL downloaded for ADD. */
export interface Downloaded {
  /** Host path of the downloaded bytes (in the build's scratch dir). */
  file: string;
  /** File name in the image: the URL path's last part, else `__unnamed__` (see {@link downloadName}). */
  name: string;
  /** `Last-Modified`, or the time of the download when absent. */
  mtime: Date;
}

/** Default upper bound of one ADD download. */
export const MAX_DOWNLOAD_BYTES = 8 * 1024 ** 3;

const ALGORITHMS: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

/** Parses `--checksum` (`sha256:<hex>`, sha384, sha512), failing with BuildKit's messages. */
export function parseChecksum(spec: string): { algorithm: string; hex: string } {
  const i = spec.indexOf(":");
  if (i < 0)
    throw new KilnError("ADD_CHECKSUM_INVALID", `invalid checksum digest format: "${spec}" (write sha256:<hex>)`);
  const algorithm = spec.slice(0, i);
  const hex = spec.slice(i + 1).toLowerCase();
  const len = ALGORITHMS[algorithm];
  if (len === undefined) {
    throw new KilnError(
      "ADD_CHECKSUM_INVALID",
      `unsupported digest algorithm "${algorithm}" in --checksum (use sha256, sha384 or sha512)`,
    );
  }
  if (!new RegExp(`^[0-9a-f]{${len}}$`).test(hex)) {
    throw new KilnError(
      "ADD_CHECKSUM_INVALID",
      `invalid checksum digest format: "${spec}" (${algorithm} needs ${len} hex digits)`,
    );
  }
  return { algorithm, hex };
}

/**
 * The file name BuildKit's Dockerfile frontend gives a downloaded URL: the last element of the URL's path,
 * else `__unnamed__`. A `Content-Disposition` header is not read (the legacy builder read it; BuildKit
 * names the file before downloading it), so the name depends on the instruction's text alone.
 */
export function downloadName(url: URL): string {
  const base = path.posix.basename(url.pathname);
  if (base === "" || base === "/" || base === "." || base === "..") return "__unnamed__";
  return percentDecoded(base);
}

/**
 * Downloads an ADD URL (http/https, redirects followed, proxies from `env`) into `tmpDir`, streaming
 * to disk with a size bound, verifying `--checksum` when given. A non-2xx status fails with
 * ADD_URL_FAILED naming the URL and the status.
 */
export async function downloadUrl(
  raw: string,
  tmpDir: string,
  opts: { checksum?: string; maxBytes?: number; env?: Record<string, string | undefined>; signal?: AbortSignal } = {},
): Promise<Downloaded> {
  const url = new URL(raw);
  // Messages show the URL without credentials or query (pre-signed URLs carry their signature there).
  const shown = redactUrl(raw);
  // The URL's user info is sent as HTTP Basic credentials (RFC 7617), as curl and BuildKit do, and not in
  // the request line. The redirect interceptor drops the header on a redirect to another origin.
  const authorization = basicAuthorization(url);
  url.username = "";
  url.password = "";
  const want = opts.checksum !== undefined ? parseChecksum(opts.checksum) : undefined;
  const agent = new EnvHttpProxyAgent(proxyEnvFrom(opts.env ?? {})).compose(
    interceptors.redirect({ maxRedirections: 10 }),
  );
  const max = opts.maxBytes ?? MAX_DOWNLOAD_BYTES;
  try {
    let res;
    try {
      res = await request(url, {
        method: "GET",
        dispatcher: agent,
        headers: { "user-agent": "kiln (ADD)", ...(authorization !== undefined ? { authorization } : {}) },
        signal: opts.signal,
      });
    } catch (e) {
      throw new KilnError("ADD_URL_FAILED", `ADD ${shown}: download failed: ${(e as Error).message}`, { cause: e });
    }
    if (res.statusCode < 200 || res.statusCode > 299) {
      res.body.resume();
      throw new KilnError("ADD_URL_FAILED", `ADD ${shown}: the server answered HTTP ${res.statusCode}; check the URL`);
    }
    const header = (n: string): string | undefined => {
      const v = res.headers[n];
      return Array.isArray(v) ? v[0] : v;
    };
    const declared = Number(header("content-length") ?? "0");
    if (declared > max) {
      res.body.destroy();
      throw new KilnError("ADD_URL_TOO_LARGE", `ADD ${shown}: ${declared} bytes is more than the limit of ${max}`);
    }
    const dir = await mkdtemp(path.join(tmpDir, "add-url-"));
    const file = path.join(dir, "download");
    const hash = want ? createHash(want.algorithm) : undefined;
    let seen = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        seen += chunk.length;
        if (seen > max)
          return cb(new KilnError("ADD_URL_TOO_LARGE", `ADD ${shown}: more than the limit of ${max} bytes`));
        hash?.update(chunk);
        cb(null, chunk);
      },
    });
    await pipeline(res.body, meter, createWriteStream(file, { mode: 0o600 }));
    if (want && hash) {
      const got = hash.digest("hex");
      if (got !== want.hex) {
        throw new KilnError(
          "ADD_CHECKSUM_MISMATCH",
          `ADD ${shown}: digest mismatch: expected ${want.algorithm}:${want.hex}, got ${want.algorithm}:${got}`,
        );
      }
    }
    const lm = header("last-modified");
    const parsed = lm ? new Date(lm) : undefined;
    const mtime = parsed && !Number.isNaN(parsed.getTime()) ? parsed : new Date();
    return { file, name: downloadName(url), mtime };
  } finally {
    await agent.close().catch(() => undefined);
  }
}
