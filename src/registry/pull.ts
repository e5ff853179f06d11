import { Readable } from "node:stream";
import { KilnError } from "../common/errors.js";
import { imageFromRaw } from "../image/assemble.js";
import { isDigest, sha256Digest, type Digest } from "../image/digest.js";
import type { Descriptor, Image, ImageConfigFile, ImageManifest, Layer, Platform } from "../image/types.js";
import { digestMismatch, openBlob } from "./blob-reader.js";
import { decompressAuto } from "../image/compress/compression.js";
import { RegistryError, statusError } from "./errors.js";
import type { ClientContext } from "./events.js";

import { header, readLimited, unexpected, type RegistryHost } from "./host.js";
import { isSchema1, MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, parseManifest, unsupportedSchema1 } from "./manifest.js";
import { formatPlatform, isAttestation, selectPlatform } from "./platform.js";
import { retryOpts, withRetry } from "./retry.js";

/** A manifest as fetched: raw bytes, media type and sha256 digest of the bytes. */
export interface FetchedManifest {
  raw: Uint8Array;
  mediaType: string;
  digest: Digest;
}

/**
 * GETs a manifest by tag or digest with content negotiation, size limit (4 MiB) and digest check
 * (against the requested digest, else against `Docker-Content-Digest`). 404 → undefined.
 */
export async function fetchManifest(
  ctx: ClientContext,
  host: RegistryHost,
  repository: string,
  reference: string,
  signal?: AbortSignal,
): Promise<FetchedManifest | undefined> {
  const where = `${host.registry}/${repository}${isDigest(reference) ? "@" : ":"}${reference}`;
  return withRetry(
    async () => {
      const res = await host.request({
        operation: "pulling",
        method: "GET",
        url: `/v2/${repository}/manifests/${reference}`,
        scopes: [`repository:${repository}:pull`],
        repository,
        headers: { accept: MANIFEST_ACCEPT },
        followRedirects: true,
        ...(signal ? { signal } : {}),
      });
      if (res.status === 404) {
        await res.body.dump();
        return undefined;
      }
      if (res.status !== 200) throw await unexpected(res, "pulling", host.registry, repository);
      const tooLarge = (): KilnError =>
        new KilnError(
          "MANIFEST_TOO_LARGE",
          `manifest of ${where} is larger than ${MAX_MANIFEST_BYTES} bytes; refusing it`,
        );
      const len = Number(header(res.headers, "content-length") ?? "0");
      if (len > MAX_MANIFEST_BYTES) {
        res.body.destroy();
        throw tooLarge();
      }
      // A connection that fails while the body is read names the registry and repository (still retried).
      const raw = await readLimited(res.body, MAX_MANIFEST_BYTES, tooLarge).catch((e: unknown) => {
        throw e instanceof KilnError || signal?.aborted === true
          ? e
          : host.networkError(`pulling manifest ${reference} of`, repository, e);
      });
      const digest = sha256Digest(raw);
      const loc = { host, repository, digest, size: raw.length };
      const ct = header(res.headers, "content-type");
      // A signed schema 1 manifest's digest is over its payload without the signatures, never the raw
      // bytes': a mismatch then is that manifest, which is refused for what it is.
      const mismatch = (expected: Digest): KilnError =>
        isSchema1(raw, ct)
          ? unsupportedSchema1(where)
          : digestMismatch({ ...loc, digest: expected }, `manifest content hashes to ${digest}`);
      if (isDigest(reference) && reference !== digest) throw mismatch(reference);
      const claimed = header(res.headers, "docker-content-digest");
      if (claimed !== undefined && isDigest(claimed) && claimed !== digest) throw mismatch(claimed);
      const mediaType = parseManifest(raw, ct, where).mediaType;
      return { raw, mediaType, digest };
    },
    retryOpts(ctx, host, `pull manifest ${where}`, signal),
  );
}

/** Reports a manifest that was fetched and parsed (the `pull-manifest` event). */
function emitPulled(
  ctx: ClientContext,
  host: RegistryHost,
  repository: string,
  reference: string,
  digest: Digest,
  mediaType: string,
): void {
  ctx.emit({ kind: "pull-manifest", registry: host.registry, repository, reference, digest, mediaType });
}

function notFound(host: RegistryHost, repository: string, reference: string): RegistryError {
  return statusError(
    "pulling",
    host.registry,
    repository,
    404,
    JSON.stringify({
      errors: [
        {
          code: "MANIFEST_UNKNOWN",
          message: `no manifest for ${isDigest(reference) ? "digest" : "tag"} ${reference}; check the image name and tag`,
        },
      ],
    }),
  );
}

/**
 * Resolves `reference` in one repository to a single-platform Image: manifest negotiation, index →
 * platform selection (skipping attestations), config fetch (≤ 4 MiB, verified) and lazy layers
 * whose streams are verified against their digests.
 */
export async function pullFrom(
  ctx: ClientContext,
  host: RegistryHost,
  repository: string,
  reference: string,
  platform: Platform,
  signal?: AbortSignal,
): Promise<Image> {
  const where = `${host.registry}/${repository}`;
  let fetched = await manifestByDigest(ctx, host, repository, reference, undefined, signal);
  if (fetched === undefined) throw notFound(host, repository, reference);
  let parsed = parseManifest(fetched.raw, fetched.mediaType, where);
  for (let depth = 0; parsed.kind === "index"; depth++) {
    if (depth >= 2) throw new KilnError("INVALID_MANIFEST", `${where}: image indexes nested too deeply`);
    const chosen = selectPlatform(parsed.index.manifests, platform);
    if (chosen === undefined) {
      const available = parsed.index.manifests
        .filter((d) => d.platform !== undefined && !isAttestation(d))
        .map((d) => formatPlatform(d.platform as Platform));
      throw new KilnError(
        "PLATFORM_NOT_FOUND",
        `${where}:${reference} has no image for platform ${formatPlatform(platform)} (available: ${available.join(", ") || "none"}); choose one with --custom-platform`,
      );
    }
    fetched = await manifestByDigest(ctx, host, repository, chosen.digest, chosen.mediaType, signal);
    if (fetched === undefined) throw notFound(host, repository, chosen.digest);
    parsed = parseManifest(fetched.raw, fetched.mediaType, where);
  }
  const manifest = parsed.manifest;
  emitPulled(ctx, host, repository, reference, fetched.digest, parsed.mediaType);
  return withConfig(ctx, host, repository, fetched.raw, manifest, parsed.mediaType, signal);
}

/**
 * {@link fetchManifest}, except that a manifest named by its digest comes from the metadata cache when
 * kept there (parsed with `mediaType`, the index's descriptor media type, when known) and is kept there
 * once fetched. A tag always goes to the registry.
 */
async function manifestByDigest(
  ctx: ClientContext,
  host: RegistryHost,
  repository: string,
  reference: string,
  mediaType: string | undefined,
  signal?: AbortSignal,
): Promise<FetchedManifest | undefined> {
  if (!isDigest(reference) || ctx.metadata === undefined)
    return fetchManifest(ctx, host, repository, reference, signal);
  const kept = await ctx.metadata.get(reference, MAX_MANIFEST_BYTES);
  if (kept !== undefined) {
    try {
      const where = `${host.registry}/${repository}@${reference}`;
      return { raw: kept, mediaType: parseManifest(kept, mediaType, where).mediaType, digest: reference };
    } catch {
      // Not parseable without the registry's Content-Type: fetched below.
    }
  }
  const fetched = await fetchManifest(ctx, host, repository, reference, signal);
  if (fetched !== undefined) void ctx.metadata.put(fetched.digest, fetched.raw); // checked against its digest
  return fetched;
}

/** Completes a fetched single-image manifest into an Image: config fetch (≤ 4 MiB, verified) and lazy layers. */
async function withConfig(
  ctx: ClientContext,
  host: RegistryHost,
  repository: string,
  raw: Uint8Array,
  manifest: ImageManifest,
  mediaType: string,
  signal?: AbortSignal,
): Promise<Image> {
  const where = `${host.registry}/${repository}`;
  const cfgDesc = manifest.config;
  if (cfgDesc.size > MAX_MANIFEST_BYTES) {
    throw new KilnError(
      "CONFIG_TOO_LARGE",
      `config ${cfgDesc.digest} of ${where} is ${cfgDesc.size} bytes, more than the ${MAX_MANIFEST_BYTES} kiln accepts`,
    );
  }
  const cfgLoc = { host, repository, digest: cfgDesc.digest, size: cfgDesc.size };
  let rawConfig = await ctx.metadata?.get(cfgDesc.digest, MAX_MANIFEST_BYTES);
  if (rawConfig === undefined) {
    rawConfig = await readLimited(openBlob(ctx, cfgLoc, signal), MAX_MANIFEST_BYTES, () =>
      digestMismatch(cfgLoc, "config larger than declared"),
    );
    void ctx.metadata?.put(cfgDesc.digest, rawConfig); // verified against its digest while streaming
  }
  let config: ImageConfigFile;
  try {
    config = JSON.parse(rawConfig.toString("utf8")) as ImageConfigFile;
  } catch (e) {
    throw new KilnError("INVALID_CONFIG", `config ${cfgDesc.digest} of ${where} is not valid JSON`, { cause: e });
  }
  const diffIds = config.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || diffIds.length !== manifest.layers.length) {
    throw new KilnError(
      "INVALID_CONFIG",
      `config of ${where} lists ${Array.isArray(diffIds) ? diffIds.length : 0} diff_ids for ${manifest.layers.length} layers`,
    );
  }
  // A diffID names the layer in caches and stores on disk: anything but a digest is refused here.
  const bad = diffIds.find((d: unknown) => typeof d !== "string" || !isDigest(d));
  if (bad !== undefined) {
    throw new KilnError(
      "INVALID_CONFIG",
      `config of ${where} lists a diff_id that is not a digest: ${JSON.stringify(bad).slice(0, 100)}`,
    );
  }
  const layers: Layer[] = manifest.layers.map((d, i) => remoteLayer(ctx, host, repository, d, diffIds[i] as Digest));
  return imageFromRaw(raw, manifest, rawConfig, config, layers, mediaType);
}

/**
 * A lazy layer in a repository: `openCompressed()` GETs the blob (verified against its digest while
 * streaming); origins name the repository, so a push to the same registry can mount it.
 */
export function remoteLayer(
  ctx: ClientContext,
  host: RegistryHost,
  repository: string,
  d: Descriptor,
  diffId: Digest,
): Layer {
  const loc = { host, repository, digest: d.digest, size: d.size };
  const layer: Layer = {
    mediaType: d.mediaType,
    digest: d.digest,
    diffId,
    size: d.size,
    ...(d.annotations ? { annotations: d.annotations } : {}),
    origins: Object.freeze([Object.freeze({ registry: host.registry, repository })]),
    verifiesCompressed: true, // openBlob hashes what it yields and fails at the end on a mismatch
    openCompressed: (sig?: AbortSignal): Promise<Readable> => Promise.resolve(openBlob(ctx, loc, sig)),
    openUncompressed: (sig?: AbortSignal): Promise<Readable> => decompressAuto(openBlob(ctx, loc, sig)),
  };
  return Object.freeze(layer);
}

/** A single-image manifest read without its config (see {@link RegistryClient.getImageManifest}). */
export interface ManifestOnly {
  digest: Digest;
  mediaType: string;
  manifest: ImageManifest;
  /** Layer `i` of the manifest as a lazy remote layer; the caller supplies its diffID. */
  layer(i: number, diffId: Digest): Layer;
  /** The whole image: fetches the config (no second manifest request). */
  image(signal?: AbortSignal): Promise<Image>;
}

/** GETs a single-image manifest (404 → undefined; an index → undefined) without fetching its config. */
export async function fetchImageManifest(
  ctx: ClientContext,
  host: RegistryHost,
  repository: string,
  reference: string,
  signal?: AbortSignal,
): Promise<ManifestOnly | undefined> {
  const fetched = await fetchManifest(ctx, host, repository, reference, signal);
  if (fetched === undefined) return undefined;
  const parsed = parseManifest(fetched.raw, fetched.mediaType, `${host.registry}/${repository}`);
  if (parsed.kind === "index") return undefined;
  const manifest = parsed.manifest;
  emitPulled(ctx, host, repository, reference, fetched.digest, parsed.mediaType);
  return {
    digest: fetched.digest,
    mediaType: parsed.mediaType,
    manifest,
    layer: (i, diffId) => {
      const d = manifest.layers[i];
      if (d === undefined) throw new KilnError("INVALID_MANIFEST", `${host.registry}/${repository}: no layer ${i}`);
      return remoteLayer(ctx, host, repository, d, diffId);
    },
    image: (sig) => withConfig(ctx, host, repository, fetched.raw, manifest, parsed.mediaType, sig),
  };
}
