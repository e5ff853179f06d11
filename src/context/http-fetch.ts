import { Readable, Transform, pipeline, type TransformCallback } from "node:stream";
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib";
import { interceptors, request, type Dispatcher } from "undici";
import { KilnError } from "../common/errors.js";
import { redactUrl } from "./context-spec.js";
import { contextDispatcher, type ProxyEnv } from "./proxy.js";

/** Options of {@link httpGet}. */
export interface HttpGetOptions {
  headers?: Record<string, string>;
  /** Largest body accepted (bytes); more fails with CONTEXT_TOO_LARGE. */
  maxBytes: number;
  /** What the download is, for error messages ("build context", "Dockerfile"). */
  what: string;
  signal?: AbortSignal;
  /** `HTTP(S)_PROXY`/`NO_PROXY` to go through (none: a direct connection). */
  proxy?: ProxyEnv | undefined;
}

/** Redirects followed, as many as fetch follows. */
const MAX_REDIRECTS = 20;

/**
 * GETs a URL (following up to 20 redirects; through `opts.proxy` unless the host is in its `noProxy`) and
 * returns the body as a stream bounded to `maxBytes`. A status other than 200 fails with CONTEXT_FETCH
 * naming the (redacted) URL and status. The connection pool is closed once the body has been read.
 */
export async function httpGet(url: string, opts: HttpGetOptions): Promise<Readable> {
  const agent = contextDispatcher(opts.proxy);
  const close = (): void => void agent.close().catch(() => undefined);
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, {
      method: "GET",
      // What fetch sent: some servers refuse a request without a User-Agent (api.github.com tarballs).
      headers: { "user-agent": "kiln", accept: "*/*", "accept-encoding": "gzip, deflate, br", ...opts.headers },
      dispatcher: agent.compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTS })),
      signal: opts.signal,
    });
  } catch (e) {
    close();
    const cause = e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e);
    throw new KilnError("CONTEXT_FETCH", `${opts.what} ${redactUrl(url)}: download failed: ${cause}`);
  }
  if (res.statusCode !== 200) {
    await res.body.dump().catch(() => undefined);
    close();
    // node:http only for its reason phrases, on this error path: loading it costs every start (~5 ms).
    const { STATUS_CODES } = await import("node:http");
    const status = [res.statusCode, STATUS_CODES[res.statusCode]].filter(Boolean).join(" ");
    throw new KilnError(
      "CONTEXT_FETCH",
      res.statusCode >= 300 && res.statusCode < 400 && res.headers.location !== undefined
        ? `${opts.what} ${redactUrl(url)}: more than ${MAX_REDIRECTS} redirects (the last answer: ${status})`
        : `${opts.what} ${redactUrl(url)}: the server answered ${status} (expected 200)`,
    );
  }
  const encoding = String(res.headers["content-encoding"] ?? "identity")
    .trim()
    .toLowerCase();
  const decoder = decoderFor(encoding);
  if (decoder === null) {
    await res.body.dump().catch(() => undefined);
    close();
    throw new KilnError("CONTEXT_FETCH", `${opts.what} ${redactUrl(url)}: unsupported Content-Encoding ${encoding}`);
  }
  const declared = Number(res.headers["content-length"] ?? "NaN");
  if (decoder === undefined && Number.isFinite(declared) && declared > opts.maxBytes) {
    await res.body.dump().catch(() => undefined);
    close();
    throw tooLarge(opts, url);
  }
  // The limit counts decoded bytes (a compressed answer cannot exceed it by expanding).
  const limit = byteLimit(opts.maxBytes, () => tooLarge(opts, url));
  if (!decoder) return pipeline(res.body, limit, () => close());
  // A body that does not decode fails the download with an error that names it (zlib's own says only
  // "incorrect header check"); registered before pipeline's listeners, so the reader sees this one.
  decoder.once("error", (e) => {
    limit.destroy(
      new KilnError(
        "CONTEXT_FETCH",
        `${opts.what} ${redactUrl(url)}: the ${encoding} body does not decode: ${e.message}`,
      ),
    );
  });
  return pipeline(res.body, decoder, limit, () => close());
}

/** The decoder of a Content-Encoding as fetch decodes them; undefined for none, null for one it does not know. */
function decoderFor(encoding: string): Transform | undefined | null {
  if (encoding === "" || encoding === "identity") return undefined;
  if (encoding === "gzip" || encoding === "x-gzip") return createGunzip();
  if (encoding === "deflate") return createInflate();
  if (encoding === "br") return createBrotliDecompress();
  return null;
}

function tooLarge(opts: HttpGetOptions, url: string): KilnError {
  return new KilnError(
    "CONTEXT_TOO_LARGE",
    `${opts.what} ${redactUrl(url)} is larger than the limit of ${opts.maxBytes} bytes`,
  );
}

/** A pass-through that fails once more than `max` bytes went through it. */
export function byteLimit(max: number, error: () => Error): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
      seen += chunk.length;
      if (seen > max) cb(error());
      else cb(null, chunk);
    },
  });
}
