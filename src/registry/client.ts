import type { Dispatcher } from "undici";
import { KilnError } from "../common/errors.js";
import type { Digest } from "../image/digest.js";
import type { Limiter } from "../common/limit.js";
import type { Image, Layer, Platform } from "../image/types.js";
import type { Keychain } from "./credentials.js";
import { metadataCache } from "./metadata-cache.js";
import {
  createDispatcher,
  envCaCertificates,
  tlsOptions,
  type RegistryHostOptions,
  type TlsConnectOptions,
} from "./dispatcher.js";
import { redactText } from "./errors.js";
import type { ClientContext, RegistryEvent } from "./events.js";
import { RegistryHost } from "./host.js";
import { dockerConfigKeychain } from "./keychain.js";
import { fetchImageManifest, fetchManifest, pullFrom, type FetchedManifest, type ManifestOnly } from "./pull.js";
import { checkPush, pushImageTo, type DeferredCancellation } from "./push.js";
import { pushLayerAhead } from "./push-ahead.js";
import { tagBlobs } from "./push-prefetch.js";
import { PushState } from "./push-state.js";
import { DOCKER_HUB_REGISTRY, type Reference } from "./reference.js";

/** Options of a {@link RegistryClient}. */
export interface RegistryClientOptions {
  /** Environment (credentials lookup, proxies, SSL_CERT_*); never read from process.env here. */
  env: Record<string, string | undefined>;
  /** Transport options of one registry for pulls or pushes (kiln maps its flags onto this). */
  hostOptions(registry: string, purpose: "pull" | "push"): RegistryHostOptions;
  /** Pull mirrors: `from` registry → `to` hosts (each may carry a path prefix), tried in order. */
  registryMap?: { from: string; to: string[] }[];
  /** Do not fall back to the original registry when every mirror failed. */
  skipDefaultFallback?: boolean;
  /** Operation-level retries for pulls and pushes (default 3). */
  retries?: number;
  /** First backoff delay in milliseconds, doubled per retry (default 200). */
  retryBaseDelayMs?: number;
  /** Upload blobs larger than this in PATCH chunks of this size (≥ 5 MiB); default: one monolithic PUT. */
  uploadChunkSize?: number;
  userAgent?: string;
  /** Receives progress and debug events (`blob-progress` per blob transfer, retries, mounts…). */
  onEvent?: (e: RegistryEvent) => void;
  /** Minimum milliseconds between two `blob-progress` events of one blob (default 100; 0: every chunk). */
  progressIntervalMs?: number;
  /** Credentials source; default `dockerConfigKeychain(env)`. */
  keychain?: Keychain;
  /**
   * A directory where configs and manifests fetched by digest are kept for later builds (one or two
   * requests less per base image); undefined: always fetched. See `metadataCache`.
   */
  metadataCacheDir?: string;
}

function normaliseRegistry(r: string): string {
  return r === "docker.io" ? DOCKER_HUB_REGISTRY : r;
}

/**
 * Key of the TLS settings of host options: equal keys share one TLS context; with the registry and
 * `insecure` in front, it keys the shared endpoint as well.
 */
function optionsKey(ho: RegistryHostOptions): string {
  return JSON.stringify([ho.skipTlsVerify === true, ho.caFiles ?? [], ho.clientCert ?? null]);
}

function referenceString(ref: Reference): string {
  const r = ref.digest ?? ref.tag;
  if (r === undefined) throw new KilnError("INVALID_REFERENCE", `reference ${ref.name} has neither tag nor digest`);
  return r;
}

/**
 * The distribution-protocol client: pulls single-platform images, fetches manifests, pushes images
 * and checks push permission. One undici dispatcher per registry and purpose, created lazily with
 * that registry's TLS options; all caches (tokens, pushed blobs) live in the instance.
 */
export class RegistryClient {
  private readonly opts: RegistryClientOptions;
  private readonly keychain: Keychain;
  private readonly ctx: ClientContext;
  private readonly hosts = new Map<string, RegistryHost>();
  private readonly dispatchers: Dispatcher[] = [];
  /** Blobs known in the repositories this client pushes to (verified, or assumed from a prefetched tag). */
  private readonly pushState = new PushState();
  /** TLS options per distinct TLS configuration, built on first use (pull and push of a registry share one). */
  private readonly tlsByConfig = new Map<string, TlsConnectOptions>();
  private envCas: string[] | undefined;

  constructor(opts: RegistryClientOptions) {
    this.opts = opts;
    this.keychain = opts.keychain ?? dockerConfigKeychain(opts.env);
    const onEvent = opts.onEvent;
    this.ctx = {
      retries: opts.retries ?? 3,
      baseDelayMs: opts.retryBaseDelayMs ?? 200,
      emit: (e) => onEvent?.(e),
      ...(opts.progressIntervalMs !== undefined ? { progressIntervalMs: opts.progressIntervalMs } : {}),
      ...(opts.metadataCacheDir !== undefined ? { metadata: metadataCache(opts.metadataCacheDir) } : {}),
    };
  }

  /**
   * The endpoint for `registry` and `purpose`. Pulls and pushes of a registry whose options are the same
   * (the usual case: `--insecure` and `--insecure-pull` both set, or neither) share one endpoint: one
   * ping, one token cache, one connection pool.
   */
  private host(registry: string, purpose: "pull" | "push"): RegistryHost {
    const byPurpose = `${purpose} ${registry}`;
    let h = this.hosts.get(byPurpose);
    if (h === undefined) {
      const ho = this.opts.hostOptions(registry, purpose);
      const byOptions = `options ${registry} ${ho.insecure === true} ${optionsKey(ho)}`;
      h = this.hosts.get(byOptions);
      if (h === undefined) {
        const dispatcher = createDispatcher(ho, this.opts.env, () => this.tls(ho));
        this.dispatchers.push(dispatcher);
        h = new RegistryHost(registry, dispatcher, this.keychain, ho.insecure === true, this.opts.userAgent ?? "kiln");
        this.hosts.set(byOptions, h);
      }
      this.hosts.set(byPurpose, h);
    }
    return h;
  }

  /** The TLS options of `ho`: SSL_CERT_DIR is read and the secure context built once, when first needed. */
  private tls(ho: RegistryHostOptions): TlsConnectOptions {
    const key = optionsKey(ho);
    let t = this.tlsByConfig.get(key);
    if (t === undefined) {
      t = tlsOptions(ho, (this.envCas ??= envCaCertificates(this.opts.env)));
      this.tlsByConfig.set(key, t);
    }
    return t;
  }

  /** Pull candidates for a reference: mirrors from registryMap in order, then the original. */
  private candidates(ref: Reference): { registry: string; repository: string }[] {
    const out: { registry: string; repository: string }[] = [];
    for (const m of this.opts.registryMap ?? []) {
      if (normaliseRegistry(m.from) !== ref.registry) continue;
      for (const to of m.to) {
        const slash = to.indexOf("/");
        const registry = normaliseRegistry(slash >= 0 ? to.slice(0, slash) : to);
        const prefix = slash >= 0 ? to.slice(slash + 1).replace(/\/+$/, "") : "";
        out.push({ registry, repository: prefix ? `${prefix}/${ref.repository}` : ref.repository });
      }
    }
    if (out.length === 0 || this.opts.skipDefaultFallback !== true) {
      out.push({ registry: ref.registry, repository: ref.repository });
    }
    return out;
  }

  /**
   * Resolves a reference to a single-platform Image (index → platform match), trying mirrors first.
   * Layers are lazy: openCompressed() GETs the blob (following redirects without credentials) and
   * verifies its digest while streaming; openUncompressed() decompresses that stream.
   * Layer.origins = [{registry, repository}] of where it was actually pulled from.
   */
  async pullImage(ref: Reference, opts: { platform: Platform; signal?: AbortSignal }): Promise<Image> {
    const reference = referenceString(ref);
    const cands = this.candidates(ref);
    let lastError: unknown;
    for (const [i, c] of cands.entries()) {
      try {
        return await pullFrom(
          this.ctx,
          this.host(c.registry, "pull"),
          c.repository,
          reference,
          opts.platform,
          opts.signal,
        );
      } catch (e) {
        lastError = e;
        if (opts.signal?.aborted || i === cands.length - 1) break;
        this.ctx.emit({
          kind: "mirror-failed",
          registry: ref.registry,
          repository: ref.repository,
          mirror: `${c.registry}/${c.repository}`,
          error: redactText(e instanceof Error ? e.message : String(e)),
        });
      }
    }
    throw lastError;
  }

  /** Fetches a manifest by tag/digest (raw bytes, media type, digest), e.g. for the warmer and cache probes. 404 → undefined. */
  async getManifest(ref: Reference, signal?: AbortSignal): Promise<FetchedManifest | undefined> {
    return fetchManifest(this.ctx, this.host(ref.registry, "pull"), ref.repository, referenceString(ref), signal);
  }

  /**
   * Fetches a single-image manifest without its config, for readers whose manifest annotations carry
   * what they need (the layer cache's entries): one round trip. 404 or an index → undefined.
   */
  async getImageManifest(ref: Reference, signal?: AbortSignal): Promise<ManifestOnly | undefined> {
    return fetchImageManifest(this.ctx, this.host(ref.registry, "pull"), ref.repository, referenceString(ref), signal);
  }

  /**
   * Pushes all blobs (HEAD check where it pays, cross-repository mount from Layer.origins on the same
   * registry, upload; a blob pushed ahead is waited for), then the manifest under ref's tag (or digest).
   * Returns the manifest digest.
   */
  async pushImage(ref: Reference, image: Image, opts?: { signal?: AbortSignal }): Promise<Digest> {
    if (ref.digest !== undefined && ref.tag === undefined && ref.digest !== image.digest) {
      throw new KilnError(
        "DIGEST_MISMATCH",
        `cannot push to ${ref.toString()}: the image's manifest digest is ${image.digest}`,
      );
    }
    const signal = opts?.signal;
    const chunkSize = this.opts.uploadChunkSize;
    return pushImageTo(
      this.ctx,
      this.host(ref.registry, "push"),
      ref.repository,
      referenceString(ref),
      image,
      this.pushState,
      {
        ...(signal ? { signal } : {}),
        ...(chunkSize !== undefined ? { chunkSize } : {}),
      },
    );
  }

  /**
   * Starts pushing one layer of an image still being built to ref's repository (see {@link pushLayerAhead}):
   * a later {@link pushImage} there waits for that push instead of checking or pushing the blob again.
   * Call it once the push permission check passed. Never rejects; `uploads` bounds these transfers.
   */
  async pushLayerAhead(ref: Reference, layer: Layer, opts: { signal?: AbortSignal; uploads?: Limiter }): Promise<void> {
    const chunkSize = this.opts.uploadChunkSize;
    let host: RegistryHost;
    try {
      host = this.host(ref.registry, "push");
    } catch {
      return; // an unusable host setting fails the final push, with its error
    }
    await pushLayerAhead(this.ctx, host, ref.repository, layer, this.pushState, {
      ...opts,
      ...(chunkSize !== undefined ? { chunkSize } : {}),
    });
  }

  /**
   * Reads the manifest ref's tag holds now (one GET, with the same credentials and token scope as
   * the push) and remembers its config and layers as present in the repository: a later
   * {@link pushImage} to that repository (any tag) skips their existence checks. If the registry
   * then refuses the manifest for a missing blob, that push checks every blob and retries once.
   * Call it at build start, alongside {@link checkPushPermission}. Best effort: a missing tag, an
   * index, or any failure leaves nothing assumed and never rejects. Reads nothing for a digest
   * reference, nor on Docker Hub, which counts every manifest GET against the account's pull rate
   * limit. Resolves to the number of blobs now assumed present from this tag.
   */
  async prefetchPushState(ref: Reference, signal?: AbortSignal): Promise<number> {
    if (ref.digest !== undefined || ref.tag === undefined || ref.registry === DOCKER_HUB_REGISTRY) return 0;
    // Never rejects: callers start it without waiting (a rejection nobody handles ends the process), and a
    // prefetch only saves requests; what fails here (e.g. an unreadable --registry-certificate, thrown when
    // the host is set up) fails the push itself, with its error.
    try {
      const digests = tagBlobs(this.host(ref.registry, "push"), ref.repository, ref.tag, signal);
      this.pushState.assume(ref.registry, ref.repository, digests);
      return (await digests).length;
    } catch {
      return 0;
    }
  }

  /**
   * kaniko's push-permission pre-check: open an upload session in ref's repository and cancel it. With
   * `defer`, the check resolves once the session is open and the cancellation is handed to `defer`
   * (see {@link checkPush}); the caller must await it before {@link close}.
   */
  async checkPushPermission(ref: Reference, signal?: AbortSignal, defer?: DeferredCancellation): Promise<void> {
    return checkPush(this.ctx, this.host(ref.registry, "push"), ref.repository, ref.toString(), signal, defer);
  }

  /** Closes every connection pool; the client must not be used afterwards. */
  async close(): Promise<void> {
    await this.ctx.metadata?.settled(); // metadata written in the background is there for the next build
    const all = this.dispatchers.splice(0);
    this.hosts.clear();
    await Promise.all(all.map((d) => d.close()));
  }
}
