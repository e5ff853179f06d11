import { Readable, Transform, pipeline, type TransformCallback } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { KilnError } from "../common/errors.js";
import { redactUrl } from "./context-spec.js";

/** Options of {@link httpGet}. */
export interface HttpGetOptions {
  headers?: Record<string, string>;
  /** Largest body accepted (bytes); more fails with CONTEXT_TOO_LARGE. */
  maxBytes: number;
  /** What the download is, for error messages ("build context", "Dockerfile"). */
  what: string;
  signal?: AbortSignal;
}

/**
 * GETs a URL (following up to 20 redirects) and returns the body as a stream bounded to `maxBytes`.
 * A status other than 200 fails with CONTEXT_FETCH naming the (redacted) URL and status.
 */
export async function httpGet(url: string, opts: HttpGetOptions): Promise<Readable> {
  let res: Response;
  try {
    res = await fetch(url, { headers: opts.headers ?? {}, redirect: "follow", signal: opts.signal ?? null });
  } catch (e) {
    const cause = e instanceof Error && e.cause instanceof Error ? e.cause.message : String(e);
    throw new KilnError("CONTEXT_FETCH", `${opts.what} ${redactUrl(url)}: download failed: ${cause}`);
  }
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => undefined);
    throw new KilnError(
      "CONTEXT_FETCH",
      `${opts.what} ${redactUrl(url)}: the server answered ${res.status} ${res.statusText} (expected 200)`,
    );
  }
  const declared = Number(res.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > opts.maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw tooLarge(opts, url);
  }
  if (!res.body) return Readable.from([]);
  const body = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
  return pipeline(
    body,
    byteLimit(opts.maxBytes, () => tooLarge(opts, url)),
    () => undefined,
  );
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
