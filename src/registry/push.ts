import { Readable, Transform } from "node:stream";
import type { Digest } from "../image/digest.js";
import type { Image } from "../image/types.js";
import { blobProgress, type BlobProgress } from "./blob-progress.js";
import { digestMismatch } from "./blob-reader.js";
import { RegistryError } from "./errors.js";
import type { ClientContext } from "./events.js";

import { header, unexpected, type HostResponse, type RegistryHost } from "./host.js";
import { createLimiter, mapLimit, type Limiter } from "./limit.js";
import { retryOpts, withRetry } from "./retry.js";

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

/** A blob to push: digest, size, candidate mount sources, and a stream factory. */
export interface PushBlob {
  digest: Digest;
  size: number;
  /** Repositories on the same registry that hold it (mount candidates). */
  mountFrom: string[];
  open(signal?: AbortSignal): Promise<Readable>;
}

/** Push tuning beyond the client options. */
export interface PushSettings {
  /** Upload in PATCH chunks of this many bytes (≥ 5 MiB) instead of one monolithic PUT. */
  chunkSize?: number;
  signal?: AbortSignal;
  /** Bounds the uploads (mount attempts and transfers) of blobs the HEAD check did not find. */
  uploads?: Limiter;
}

/** State shared by the pushes of one client: blobs already known to be in a repository. */
export type PushedBlobs = Map<string, Promise<void>>;

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

/** Passes `src` through, reporting the running byte count; destroying either side destroys both. */
function counted(src: Readable, onBytes: (n: number) => void): Readable {
  let n = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      onBytes(n);
      cb(null, chunk);
    },
  });
  src.once("error", (e) => t.destroy(e));
  t.once("close", () => src.destroy());
  return src.pipe(t);
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
      return counted(await blob.open(signal), progress.update);
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
  const src = await blob.open(signal);
  try {
    for await (const chunk of rechunk(src, chunkSize)) {
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
 * stream; retryable failures are retried with backoff.
 */
export async function pushBlob(
  ctx: ClientContext,
  host: RegistryHost,
  repository: string,
  scopes: string[],
  blob: PushBlob,
  settings: PushSettings,
): Promise<void> {
  const { signal } = settings;
  let progress: BlobProgress | undefined;
  const transfer = { direction: "push" as const, registry: host.registry, repository, digest: blob.digest };
  await withRetry(
    async () => {
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
      if (head.status === 200) {
        ctx.emit({ kind: "blob-exists", registry: host.registry, repository, digest: blob.digest, size: blob.size });
        return;
      }
      if (head.status !== 404) throw await unexpected(head, "pushing", host.registry, repository);
      const upload = async (): Promise<void> => {
        const started = await startUpload(host, repository, scopes, blob, ctx, signal);
        if (started === "mounted") return;
        const chunk = settings.chunkSize;
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
 */
export async function pushImageTo(
  ctx: ClientContext,
  host: RegistryHost,
  repository: string,
  reference: string,
  image: Image,
  pushed: PushedBlobs,
  settings: PushSettings,
): Promise<Digest> {
  const { signal } = settings;
  const sources = new Set<string>();
  for (const l of image.layers) {
    for (const o of l.origins ?? []) {
      if (o.registry === host.registry && o.repository !== repository) sources.add(o.repository);
    }
  }
  const scopes = [`repository:${repository}:pull,push`, ...[...sources].map((s) => `repository:${s}:pull`)];
  const blobs = new Map<string, PushBlob>();
  blobs.set(image.manifest.config.digest, {
    digest: image.manifest.config.digest,
    size: image.rawConfig.length,
    mountFrom: [],
    open: () => Promise.resolve(Readable.from([Buffer.from(image.rawConfig)])),
  });
  for (const l of image.layers) {
    if (blobs.has(l.digest)) continue;
    const mountFrom = [
      ...new Set(
        (l.origins ?? [])
          .filter((o) => o.registry === host.registry && o.repository !== repository)
          .map((o) => o.repository),
      ),
    ];
    blobs.set(l.digest, { digest: l.digest, size: l.size, mountFrom, open: (s) => l.openCompressed(s) });
  }
  const blobSettings: PushSettings = { ...settings, uploads: settings.uploads ?? createLimiter(UPLOAD_CONCURRENCY) };
  await mapLimit([...blobs.values()], HEAD_CONCURRENCY, (blob) => {
    const key = `${host.registry}/${repository}@${blob.digest}`;
    let p = pushed.get(key);
    if (p === undefined) {
      p = pushBlob(ctx, host, repository, scopes, blob, blobSettings);
      pushed.set(key, p);
      p.catch(() => {
        if (pushed.get(key) === p) pushed.delete(key);
      });
    }
    return p;
  });
  await withRetry(
    async () => {
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
    },
    retryOpts(ctx, host, `push manifest ${host.registry}/${repository}:${reference}`, signal),
  );
  ctx.emit({ kind: "manifest-pushed", registry: host.registry, repository, reference, digest: image.digest });
  return image.digest;
}

/**
 * kaniko's pre-build push check: start an upload session in the repository and cancel it. Fails
 * with PUSH_PERMISSION_DENIED and kaniko's wording when the registry refuses.
 */
export async function checkPush(
  ctx: ClientContext,
  host: RegistryHost,
  repository: string,
  refString: string,
  signal?: AbortSignal,
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
        const loc = host.resolveLocation(res, "pushing", repository);
        try {
          const del = await host.request({
            operation: "cancelling upload to",
            method: "DELETE",
            url: loc.toString(),
            scopes: [`repository:${repository}:pull,push`],
            repository,
            ...(signal ? { signal } : {}),
          });
          await del.body.dump();
        } catch {
          // cancelling is best effort; the registry expires abandoned sessions
        }
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
