import { createLimiter } from "../common/limit.js";
import type { Layer } from "../image/types.js";
import {
  HEAD_CONCURRENCY,
  parseReference,
  UPLOAD_CONCURRENCY,
  type Reference,
  type RegistryClient,
} from "../registry/index.js";
import type { BuildOptions } from "./options.js";

/**
 * Pushes the final image's layers to every destination while the build still runs: its base layers once
 * the final stage has its base, each further layer as soon as a step produced it (or the cache gave it).
 * At the end, the image's push then has little left but the config and the manifest: it waits for these
 * pushes rather than starting its own (see RegistryClient.pushLayerAhead, which also decides which layers
 * are worth pushing ahead). Nothing is pushed before kaniko's push-permission check passed. A build that
 * fails leaves the blobs pushed so far untagged in the repository, as an interrupted push does; the
 * registry's garbage collection removes them.
 */
export class PushAhead {
  readonly #refs: readonly Reference[];
  readonly #registry: RegistryClient;
  readonly #stop = new AbortController();
  readonly #signal: AbortSignal;
  readonly #uploads = createLimiter(UPLOAD_CONCURRENCY);
  /** Bounds the pushes under way (each starts with a HEAD or a mount request), as the final push bounds its checks. */
  readonly #pushes = createLimiter(HEAD_CONCURRENCY);
  /**
   * Resolves true once the push check passed, false if it failed or {@link close} was called first: pushes
   * not allowed by then never start, and close() does not wait for the check.
   */
  readonly #allowed: Promise<boolean>;
  readonly #seen = new Set<string>();
  /** Layers added before they had the local file they may get (see {@link localFileReady}). */
  readonly #awaitingFile = new Set<string>();
  readonly #pending: Promise<void>[] = [];

  private constructor(
    refs: readonly Reference[],
    registry: RegistryClient,
    check: Promise<void>,
    signal?: AbortSignal,
  ) {
    this.#refs = refs;
    this.#registry = registry;
    this.#signal = signal ? AbortSignal.any([signal, this.#stop.signal]) : this.#stop.signal;
    const stopped = new Promise<boolean>((resolve) => {
      this.#signal.addEventListener("abort", () => resolve(false), { once: true });
    });
    this.#allowed = Promise.race([
      check.then(
        () => true,
        () => false,
      ),
      stopped,
    ]);
  }

  /** The pusher of a build that pushes (undefined: --no-push, --dryrun, no destination, or switched off). */
  static start(
    opts: Readonly<BuildOptions>,
    registry: RegistryClient,
    check: Promise<void>,
    signal?: AbortSignal,
  ): PushAhead | undefined {
    if (opts.noPush || opts.dryRun || opts.pushAhead === false || opts.destinations.length === 0) return undefined;
    return new PushAhead(
      opts.destinations.map((d) => parseReference(d)),
      registry,
      check,
      signal,
    );
  }

  /**
   * Starts pushing layers of the final image (each digest once). A layer that may still get a local file
   * (see Layer.localFile) is tried again by {@link localFileReady}: a destination that could not take it
   * without a download from another registry takes it then.
   */
  add(layers: readonly Layer[]): void {
    for (const layer of layers) {
      if (this.#seen.has(layer.digest) || this.#signal.aborted) continue;
      if (layer.localFile !== undefined && layer.localFile() === undefined) this.#awaitingFile.add(layer.digest);
      else this.#seen.add(layer.digest);
      for (const ref of this.#refs) {
        this.#pending.push(
          this.#allowed.then((go) =>
            go
              ? this.#pushes(() =>
                  this.#registry.pushLayerAhead(ref, layer, { signal: this.#signal, uploads: this.#uploads }),
                )
              : undefined,
          ),
        );
      }
    }
  }

  /** `layer` got its local file: pushed again if it was added before it had one (else nothing happens). */
  localFileReady(layer: Layer): void {
    if (this.#awaitingFile.delete(layer.digest)) this.add([layer]);
  }

  /**
   * Stops the pushes still running (none that the image's push needs, once that push is done) and waits for
   * them; pushes still waiting for the push-permission check never start. Call it after the image's push,
   * or once the build failed.
   */
  async close(): Promise<void> {
    this.#stop.abort();
    await Promise.allSettled(this.#pending);
  }
}
