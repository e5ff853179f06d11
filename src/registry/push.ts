import { Readable } from "node:stream";
import { createLimiter, type Limiter } from "../common/limit.js";
import { mapLimit } from "../common/map-limit.js";
import { countedStream } from "../common/progress.js";
import type { Digest } from "../image/digest.js";
import type { Image, Layer } from "../image/types.js";
import { blobProgress, type BlobProgress } from "./blob-progress.js";
import { digestMismatch } from "./blob-reader.js";
import { redactText, RegistryError } from "./errors.js";
import type { ClientContext } from "./events.js";

import { header, unexpected, type HostResponse, type RegistryHost } from "./host.js";
import { isStaleAssumption, type PushState } from "./push-state.js";
import { isAbortError, retryOpts, withRetry } from "./retry.js";

/** ECR's (and S3 multipart's) minimum size of every chunk but the last. */
export const MIN_CHUNK_BYTES = 5 * 1024 * 1024;

/** Parallel blob uploads per image push. */
export const UPLOAD_CONCURRENCY = 4;

/**
 * Parallel existence checks (HEAD) per image push: an image whose blobs the registry already has (a
 * cached rebuild) costs one batch of HEADs, not one round trip per 4 blobs. Stays below the
 * connection pool size of a registry host (16).
 */
export const HEAD_CONCURRENCY = 12;

/**
 * A blob up to this size that cannot be mounted is uploaded without an existence check first when this
 * build made it (the new config) or the destination tag's prefetched manifest does not name it:
 * re-sending a few KiB the repository might already hold costs less than the HEAD round trip that would
 * find out (see {@link checkBeforeUpload}).
 */
export const UNCHECKED_UPLOAD_MAX_BYTES = 64 * 1024;

/** A blob to push: digest, size, candidate mount sources, and a stream factory. */
export interface PushBlob {
  digest: Digest;
  size: number;
  /** Repositories on the same registry that hold it (mount candidates). */
  mountFrom: string[];
  /**
   * True for a blob no registry is known to hold (no origin): the new config, a layer a step produced, and
   * also one read from local disk (a `--cache-dir` base, a local cache directory, an OCI layout). False for a
   * layer pulled from a registry (a base image, a registry cache entry), which the destination may hold.
   */
  local: boolean;
  open(signal?: AbortSignal): Promise<Readable>;
}

/** The push blob of a layer bound for `repository` on `registry`: its mount candidates there. */
export function layerPushBlob(l: Layer, registry: string, repository: string): PushBlob {
  const mountFrom = (l.origins ?? [])
    .filter((o) => o.registry === registry && o.repository !== repository)
    .map((o) => o.repository);
  const local = (l.origins ?? []).length === 0;
  return {
    digest: l.digest,
    size: l.size,
    mountFrom: [...new Set(mountFrom)],
    local,
    open: (s) => l.openCompressed(s),
  };
}

/** Whether a layer was pulled from this very repository (it is there: a cache entry's layer, an image pushed back). */
export function layerFrom(l: Layer, registry: string, repository: string): boolean {
  return (l.origins ?? []).some((o) => o.registry === registry && o.repository === repository);
}

/** The token scopes of pushing blobs to `repository` that may be mounted from `sources`. */
export function pushScopes(repository: string, sources: Iterable<string>): string[] {
  return [`repository:${repository}:pull,push`, ...[...new Set(sources)].map((s) => `repository:${s}:pull`)];
}

/**
 * Whether a blob is checked (HEAD) before its upload. Not a small local blob that cannot be mounted (in
 * practice the new config or a small layer a step made: almost always absent, and re-sending a few KiB
 * costs less than the round trip that would find out; a retry checks first), nor, once the destination
 * tag's blobs are known (`tagKnown`), any small blob outside them.
 */
export function checkBeforeUpload(blob: PushBlob, tagKnown: boolean): boolean {
  if (blob.size > UNCHECKED_UPLOAD_MAX_BYTES || blob.mountFrom.length > 0) return true;
  return !tagKnown && !blob.local;
}

/** Push tuning beyond the client options. */
export interface PushSettings {
  /** Upload in PATCH chunks of this many bytes (≥ 5 MiB) instead of one monolithic PUT. */
  chunkSize?: number;
  signal?: AbortSignal;
  /** Bounds the uploads (mount attempts and transfers) of blobs the HEAD check did not find. */
  uploads?: Limiter;
}

/** Thrown inside the manifest PUT's retry loop to leave it at once: a blob assumed present may be missing. */
class AssumedBlobsRefused extends Error {
  readonly refusal: unknown;
  constructor(refusal: unknown) {
    super("manifest refused after blob checks were skipped");
    this.refusal = refusal;
  }
}

function withDigest(location: URL, digest: Digest): URL {
  const u = new URL(location);
  u.searchParams.set("digest", digest);
  return u;
}

function checkDigestHeader(res: HostResponse, host: RegistryHost, repository: string, digest: Digest): void {
  const got = header(res.headers, "docker-content-digest");
  if (got !== undefined && got !== "" && got !== digest) {
    throw digestMismatch({ host, repository, digest, size: 0 }, `registry stored it as ${got} (Docker-Content-Digest)`);
  }
}

/** Reads a stream into chunks of exactly `size` bytes (the last may be shorter). */
async function* rechunk(src: Readable, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let have = 0;
  for await (const c of src) {
    let b = c as Buffer;
    while (b.length > 0) {
      const take = Math.min(size - have, b.length);
      parts.push(b.subarray(0, take));
      have += take;
      b = b.subarray(take);
      if (have === size) {
        yield Buffer.concat(parts);
        parts = [];
        have = 0;
      }
    }
  }
  if (have > 0) yield Buffer.concat(parts);
}

async function startUpload(
  host: RegistryHost,
  repository: string,
  scopes: string[],
  blob: PushBlob,
  ctx: ClientContext,
  signal?: AbortSignal,
): Promise<URL | "mounted"> {
  const op = "pushing";
  for (const from of blob.mountFrom) {
    const res = await host.request({
      operation: op,
      method: "POST",
      url: `/v2/${repository}/blobs/uploads/?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(from)}`,
      scopes,
      repository,
      headers: { "content-length": "0" },
      ...(signal ? { signal } : {}),
    });
    if (res.status === 201) {
      await res.body.dump();
      ctx.emit({
        kind: "blob-mounted",
        registry: host.registry,
        repository,
        digest: blob.digest,
        size: blob.size,
        from,
      });
      return "mounted";
    }
    if (res.status === 202) {
      await res.body.dump();
      return host.resolveLocation(res, op, repository);
    }
    // Any other answer: fall back to a plain upload (some registries reject mount requests).
    await res.body.dump();
  }
  const res = await host.request({
    operation: op,
    method: "POST",
    url: `/v2/${repository}/blobs/uploads/`,
    scopes,
    repository,
    headers: { "content-length": "0" },
    ...(signal ? { signal } : {}),
  });
  if (res.status !== 202 && res.status !== 201) throw await unexpected(res, op, host.registry, repository);
  await res.body.dump();
  return host.resolveLocation(res, op, repository);
}

async function uploadMonolithic(
  host: RegistryHost,
  repository: string,
  scopes: string[],
  blob: PushBlob,
  location: URL,
  progress: BlobProgress,
  signal?: AbortSignal,
): Promise<void> {
  const res = await host.request({
    operation: "pushing",
    method: "PUT",
    url: withDigest(location, blob.digest).toString(),
    scopes,
    repository,
    headers: { "content-type": "application/octet-stream", "content-length": String(blob.size) },
    body: async () => {
      progress.update(0);
      const sourceError = (e: unknown): Error =>
        signal?.aborted === true && e instanceof Error ? e : host.sourceError("pushing", repository, e);
      return countedStream(await blob.open(signal), progress.update, sourceError);
    },
    ...(signal ? { signal } : {}),
  });
  if (res.status !== 201 && res.status !== 204 && res.status !== 200) {
    throw await unexpected(res, "pushing", host.registry, repository);
  }
  await res.body.dump();
  checkDigestHeader(res, host, repository, blob.digest);
}

async function uploadChunked(
  host: RegistryHost,
  repository: string,
  scopes: string[],
  blob: PushBlob,
  start: URL,
  chunkSize: number,
  progress: BlobProgress,
  signal?: AbortSignal,
): Promise<void> {
  let location = start;
  let offset = 0;
  const src = await blob.open(signal).catch((e: unknown) => {
    throw host.sourceError("pushing", repository, e);
  });
  // Requests fail with KilnErrors; anything else thrown here comes from reading the source.
  const chunks = async function* (): AsyncGenerator<Buffer> {
    try {
      yield* rechunk(src, chunkSize);
    } catch (e) {
      if (signal?.aborted === true) throw e;
      throw host.sourceError("pushing", repository, e);
    }
  };
  try {
    for await (const chunk of chunks()) {
      const res = await host.request({
        operation: "pushing",
        method: "PATCH",
        url: location.toString(),
        scopes,
        repository,
        headers: {
          "content-type": "application/octet-stream",
          "content-range": `${offset}-${offset + chunk.length - 1}`,
          "content-length": String(chunk.length),
        },
        body: chunk,
        ...(signal ? { signal } : {}),
      });
      // 202 per the spec; ECR answers 201.
      if (res.status !== 202 && res.status !== 201 && res.status !== 204) {
        throw await unexpected(res, "pushing", host.registry, repository);
      }
      await res.body.dump();
      if (header(res.headers, "location") !== undefined) location = host.resolveLocation(res, "pushing", repository);
      offset += chunk.length;
      progress.update(offset);
    }
  } finally {
    src.destroy();
  }
  const res = await host.request({
    operation: "pushing",
    method: "PUT",
    url: withDigest(location, blob.digest).toString(),
    scopes,
    repository,
    headers: { "content-type": "application/octet-stream", "content-length": "0" },
    ...(signal ? { signal } : {}),
  });
  if (res.status !== 201 && res.status !== 204 && res.status !== 200) {
    throw await unexpected(res, "pushing", host.registry, repository);
  }
  await res.body.dump();
  checkDigestHeader(res, host, repository, blob.digest);
}

/**
 * Pushes one blob unless the repository has it: HEAD check, cross-repository mount attempts, then
 * POST→PUT (monolithic, known length) or POST→PATCH…→PUT (chunked). Each attempt re-opens the
 * stream; retryable failures are retried with backoff. `check: false` skips the HEAD of the first
 * attempt (retries check), uploading at once.
 */
export async function pushBlob(
  ctx: ClientContext,
  host: RegistryHost,
  repository: string,
  scopes: string[],
  blob: PushBlob,
  settings: PushSettings,
  check = true,
): Promise<void> {
  const { signal } = settings;
  let progress: BlobProgress | undefined;
  const transfer = { direction: "push" as const, registry: host.registry, repository, digest: blob.digest };
  /** HEAD: 200 (present) or 404 (absent); anything else throws. */
  const exists = async (): Promise<boolean> => {
    const head = await host.request({
      operation: "pushing",
      method: "HEAD",
      url: `/v2/${repository}/blobs/${blob.digest}`,
      scopes,
      repository,
      // Some registries redirect HEAD to storage: follow it (without credentials) for a real answer.
      followRedirects: true,
      ...(signal ? { signal } : {}),
    });
    await head.body.dump();
    if (head.status === 200) return true;
    if (head.status !== 404) throw await unexpected(head, "pushing", host.registry, repository);
    return false;
  };
  await withRetry(
    async (attempt) => {
      if ((check || attempt > 0) && (await exists())) {
        ctx.emit({ kind: "blob-exists", registry: host.registry, repository, digest: blob.digest, size: blob.size });
        return;
      }
      const upload = async (): Promise<void> => {
        const chunk = settings.chunkSize;
        const started = await startUpload(host, repository, scopes, blob, ctx, signal);
        if (started === "mounted") return;
        progress ??= blobProgress(ctx, { ...transfer, size: blob.size });
        try {
          if (chunk !== undefined && blob.size > chunk) {
            const size = Math.max(chunk, MIN_CHUNK_BYTES);
            await uploadChunked(host, repository, scopes, blob, started, size, progress, signal);
          } else {
            await uploadMonolithic(host, repository, scopes, blob, started, progress, signal);
          }
        } catch (e) {
          progress.update(0); // a retry uploads the blob again from its start
          throw e;
        }
        progress.end("done");
        ctx.emit({ kind: "blob-pushed", registry: host.registry, repository, digest: blob.digest, size: blob.size });
      };
      await (settings.uploads ? settings.uploads(upload) : upload());
    },
    retryOpts(ctx, host, `push blob ${blob.digest}`, signal),
  ).finally(() => progress?.end("failed")); // no-op after "done"
}

/**
 * Pushes every blob of `image` (config and layers, deduplicated: existence checks {@link HEAD_CONCURRENCY}
 * in parallel, uploads of the missing ones at most {@link UPLOAD_CONCURRENCY} in parallel) then the
 * manifest under `reference` (a tag or digest); verifies `Docker-Content-Digest`. Returns the digest.
 *
 * Blobs `state` assumes present in the repository (the destination tag's manifest read at build
 * start) and layers pulled from that repository are not checked; a small blob is uploaded without a check
 * when it is local or the tag's blobs are known ({@link checkBeforeUpload}); a blob pushed ahead during
 * the build ({@link pushLayerAhead}) is waited for. If the registry then refuses the manifest (400/404, e.g.
 * MANIFEST_BLOB_UNKNOWN after a blob was deleted or garbage-collected), the assumptions are
 * dropped, every blob is checked (and uploaded where missing) and the PUT is sent once more.
 */
export async function pushImageTo(
  ctx: ClientContext,
  host: RegistryHost,
  repository: string,
  reference: string,
  image: Image,
  state: PushState,
  settings: PushSettings,
): Promise<Digest> {
  const { signal } = settings;
  const blobs = new Map<Digest, PushBlob>();
  blobs.set(image.manifest.config.digest, {
    digest: image.manifest.config.digest,
    size: image.rawConfig.length,
    mountFrom: [],
    local: true,
    open: () => Promise.resolve(Readable.from([Buffer.from(image.rawConfig)])),
  });
  for (const l of image.layers) {
    if (!blobs.has(l.digest)) blobs.set(l.digest, layerPushBlob(l, host.registry, repository));
  }
  const scopes = pushScopes(
    repository,
    [...blobs.values()].flatMap((b) => b.mountFrom),
  );
  const blobSettings: PushSettings = { ...settings, uploads: settings.uploads ?? createLimiter(UPLOAD_CONCURRENCY) };
  const assumed = new Set(await state.assumedIn(host.registry, repository));
  // A layer pulled from this very repository is there too (a cache entry's layer in the cache's chain
  // record, an image pushed back to the repository it came from): same assumption, same safety net.
  for (const l of image.layers) if (layerFrom(l, host.registry, repository)) assumed.add(l.digest);
  // A blob pushed ahead during the build (pushLayerAhead) shares that push's promise here (state.once).
  // `checkAll` (after the registry refused blobs assumed present): every blob is checked before an upload.
  const pushBlobs = (trusted: ReadonlySet<Digest>, checkAll = false): Promise<void[]> =>
    mapLimit([...blobs.values()], HEAD_CONCURRENCY, (blob) => {
      if (trusted.has(blob.digest)) {
        ctx.emit({ kind: "blob-exists", registry: host.registry, repository, digest: blob.digest, size: blob.size });
        return Promise.resolve();
      }
      const check = checkAll || checkBeforeUpload(blob, trusted.size > 0);
      const push = (): Promise<void> =>
        state.once(host.registry, repository, blob.digest, () =>
          pushBlob(ctx, host, repository, scopes, blob, blobSettings, check),
        );
      // A push this one joined may have been stopped by its own starter (another build's push ahead, on a
      // client shared by a library user): that is no reason for this push to fail. Pushed again, once.
      return push().catch((e: unknown) => {
        if (signal?.aborted === true || !isAbortError(e)) throw e;
        return push();
      });
    });
  const putManifest = async (): Promise<void> => {
    const res = await host.request({
      operation: "pushing",
      method: "PUT",
      url: `/v2/${repository}/manifests/${reference}`,
      scopes,
      repository,
      headers: { "content-type": image.mediaType },
      body: image.rawManifest,
      ...(signal ? { signal } : {}),
    });
    if (res.status < 200 || res.status > 299) throw await unexpected(res, "pushing", host.registry, repository);
    await res.body.dump();
    checkDigestHeader(res, host, repository, image.digest);
  };
  const operation = `push manifest ${host.registry}/${repository}:${reference}`;
  const skipped = [...blobs.keys()].filter((d) => assumed.has(d));
  await pushBlobs(assumed);
  try {
    await withRetry(
      async () => {
        try {
          await putManifest();
        } catch (e) {
          throw skipped.length > 0 && isStaleAssumption(e) ? new AssumedBlobsRefused(e) : e;
        }
      },
      retryOpts(ctx, host, operation, signal),
    );
  } catch (e) {
    if (!(e instanceof AssumedBlobsRefused)) throw e;
    // Safety net: a blob the tag's manifest named at build start may be gone (deleted, collected).
    ctx.emit({
      kind: "retry",
      registry: host.registry,
      operation,
      attempt: 1,
      delayMs: 0,
      reason: `${redactText(e.refusal instanceof Error ? e.refusal.message : String(e.refusal))}; ${skipped.length} blob(s) were assumed present from the tag's previous manifest: checking every blob and pushing the manifest again`,
    });
    state.forget(host.registry, repository, blobs.keys());
    await pushBlobs(new Set(), true);
    await withRetry(putManifest, retryOpts(ctx, host, operation, signal));
  }
  ctx.emit({ kind: "manifest-pushed", registry: host.registry, repository, reference, digest: image.digest });
  return image.digest;
}

/** Cancels an upload session (DELETE its Location). Best effort: never throws; the registry expires abandoned sessions. */
async function cancelUpload(
  host: RegistryHost,
  repository: string,
  location: URL,
  signal?: AbortSignal,
): Promise<void> {
  try {
    const del = await host.request({
      operation: "cancelling upload to",
      method: "DELETE",
      url: location.toString(),
      scopes: [`repository:${repository}:pull,push`],
      repository,
      ...(signal ? { signal } : {}),
    });
    await del.body.dump();
  } catch {
    // best effort
  }
}

/** How long a deferred upload-session cancellation may take (the registry expires sessions anyway). */
const CANCEL_TIMEOUT_MS = 10_000;

/** Where {@link checkPush} hands its upload session's cancellation instead of waiting for it. */
export interface DeferredCancellation {
  add(cancellation: Promise<void>): void;
  /**
   * What may stop the DELETE: the build's own signal (an interrupt). Not the check's signal, which a
   * failing build aborts: the session would then stay open on the registry.
   */
  signal?: AbortSignal;
  /** How long the DELETE may take, in milliseconds (default 10 s). */
  timeoutMs?: number;
}

/**
 * kaniko's pre-build push check: start an upload session in the repository and cancel it. Fails
 * with PUSH_PERMISSION_DENIED and kaniko's wording when the registry refuses. The check has passed once
 * the session is open: with `defer`, the cancellation (which never rejects) is handed to it and the check
 * resolves without waiting for it, so that a push waiting on the check does not wait one more round trip.
 */
export async function checkPush(
  ctx: ClientContext,
  host: RegistryHost,
  repository: string,
  refString: string,
  signal?: AbortSignal,
  defer?: DeferredCancellation,
): Promise<void> {
  const prefix =
    "error checking push permissions -- make sure you entered the correct tag name, and that you are authenticated correctly, and try again";
  try {
    await withRetry(
      async () => {
        const res = await host.request({
          operation: `checking push permission for`,
          method: "POST",
          url: `/v2/${repository}/blobs/uploads/`,
          scopes: [`repository:${repository}:pull,push`],
          repository,
          headers: { "content-length": "0" },
          ...(signal ? { signal } : {}),
        });
        if (res.status !== 202 && res.status !== 201) {
          throw await unexpected(res, "checking push permission for", host.registry, repository);
        }
        await res.body.dump();
        if (header(res.headers, "location") === undefined) return;
        const location = host.resolveLocation(res, "pushing", repository);
        if (defer) {
          // Bounded: a failing build waits for it, and a registry that never answers must not hold it.
          const limit = AbortSignal.timeout(defer.timeoutMs ?? CANCEL_TIMEOUT_MS);
          const stop = defer.signal ? AbortSignal.any([defer.signal, limit]) : limit;
          defer.add(cancelUpload(host, repository, location, stop));
        } else await cancelUpload(host, repository, location, signal);
      },
      retryOpts(ctx, host, `check push permission ${refString}`, signal),
    );
  } catch (e) {
    if (signal?.aborted) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new RegistryError("PUSH_PERMISSION_DENIED", `${prefix}: ${msg}`, {
      registry: host.registry,
      repository,
      ...(e instanceof RegistryError && e.status !== undefined ? { status: e.status } : {}),
      ...(e instanceof RegistryError && e.ociCode !== undefined ? { ociCode: e.ociCode } : {}),
      cause: e,
    });
  }
}
