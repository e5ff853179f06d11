import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import { KilnError } from "../common/errors.js";
import type { Digest } from "../image/digest.js";
import { blobProgress } from "./blob-progress.js";
import { RegistryError } from "./errors.js";
import type { ClientContext } from "./events.js";
import { header, unexpected, type RegistryHost } from "./host.js";
import { isRetryable, retryAfterOf } from "./retry.js";
import { redactText } from "./errors.js";

/** Where a blob lives and what it must hash to. */
export interface BlobLocation {
  host: RegistryHost;
  repository: string;
  digest: Digest;
  size: number;
}

/** The DIGEST_MISMATCH error naming the blob and where it came from. */
export function digestMismatch(loc: BlobLocation, why: string): RegistryError {
  return new RegistryError(
    "DIGEST_MISMATCH",
    `blob ${loc.digest} from ${loc.host.registry}/${loc.repository} failed verification: ${why}; the registry or a proxy served corrupt data`,
    { registry: loc.host.registry, repository: loc.repository },
  );
}

/**
 * Opens a registry blob as a byte stream that is verified while it is read: the stream errors with
 * DIGEST_MISMATCH (naming the blob) when the size or sha256 differ. A connection reset or premature
 * end is resumed with `Range: bytes=N-` (or by skipping N bytes when the registry ignores Range),
 * retrying with backoff on 5xx/429 too. Reports `blob-progress` (pull) events while it is read.
 */
export function openBlob(ctx: ClientContext, loc: BlobLocation, signal?: AbortSignal): Readable {
  const { host, repository, digest, size } = loc;
  const operation = "pulling";
  async function* gen(): AsyncGenerator<Buffer> {
    const progress = blobProgress(ctx, { direction: "pull", registry: host.registry, repository, digest, size });
    try {
      yield* verified(progress.update);
      progress.end("done");
    } finally {
      progress.end("failed"); // no-op after "done"; also runs when the reader stops early
    }
  }
  async function* verified(onBytes: (n: number) => void): AsyncGenerator<Buffer> {
    const hash = createHash("sha256");
    let offset = 0;
    let failures = 0;
    for (;;) {
      const startOffset = offset;
      try {
        const res = await host.request({
          operation: `${operation} blob ${digest} of`,
          method: "GET",
          url: `/v2/${repository}/blobs/${digest}`,
          scopes: [`repository:${repository}:pull`],
          repository,
          headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
          followRedirects: true,
          ...(signal ? { signal } : {}),
        });
        let skip = 0;
        if (res.status === 206 && offset > 0) {
          const m = /^bytes (\d+)-/.exec(header(res.headers, "content-range") ?? "");
          const start = m?.[1] !== undefined ? Number(m[1]) : 0;
          if (start > offset) {
            await res.body.dump();
            throw new KilnError("PREMATURE_EOF", `registry resumed blob ${digest} at the wrong offset`);
          }
          skip = offset - start;
        } else if (res.status === 200) {
          skip = offset;
        } else {
          throw await unexpected(res, `${operation} blob ${digest} of`, host.registry, repository);
        }
        for await (const chunk of res.body) {
          let b = chunk as Buffer;
          if (skip > 0) {
            const n = Math.min(skip, b.length);
            skip -= n;
            b = b.subarray(n);
            if (b.length === 0) continue;
          }
          offset += b.length;
          if (offset > size) {
            res.body.destroy();
            throw digestMismatch(loc, `more than the ${size} bytes the manifest declares`);
          }
          hash.update(b);
          onBytes(offset);
          yield b;
        }
        if (offset < size) {
          throw new KilnError("PREMATURE_EOF", `blob ${digest} ended after ${offset} of ${size} bytes`);
        }
        break;
      } catch (e) {
        if (offset > startOffset) failures = 0;
        if (signal?.aborted || !isRetryable(e) || failures >= ctx.retries) {
          if (e instanceof KilnError && e.code === "PREMATURE_EOF") {
            throw digestMismatch(loc, `got only ${offset} of ${size} bytes`);
          }
          // A connection that failed while the body was read (reset, closed) names the registry and blob.
          if (!(e instanceof KilnError) && !signal?.aborted)
            throw host.networkError(`${operation} blob ${digest} of`, repository, e);
          throw e;
        }
        failures++;
        const wait = Math.max(Math.min(ctx.baseDelayMs * 2 ** (failures - 1), 10_000), retryAfterOf(e) ?? 0);
        ctx.emit({
          kind: "retry",
          registry: host.registry,
          operation: `pull blob ${digest}`,
          attempt: failures,
          delayMs: wait,
          reason: redactText(e instanceof Error ? e.message : String(e)),
        });
        await delay(wait, undefined, signal ? { signal } : undefined);
      }
    }
    const got = `sha256:${hash.digest("hex")}`;
    if (got !== digest) throw digestMismatch(loc, `content hashes to ${got}`);
  }
  return Readable.from(gen(), { objectMode: false });
}
