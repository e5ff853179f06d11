import type { Image } from "../image/index.js";
import type { EntryHead } from "./entry.js";

/**
 * Where cache entries live: a map from a tag (a cache key, or a `slot-…` pointer to the latest
 * entry of a step position) to a small image. Implementations must tolerate concurrent writers.
 */
export interface CacheStore {
  /** Human-readable location, e.g. `registry.example/app/cache` or `oci:/cache`. */
  readonly description: string;
  /** The image under `tag`, or undefined when there is none. Throws on other failures. */
  read(tag: string, signal?: AbortSignal): Promise<Image | undefined>;
  /**
   * Optional cheaper read of the entry under `tag` (e.g. from its manifest annotation, one request);
   * undefined when there is none or it is not a kiln entry. Throws on other failures.
   */
  readHead?(tag: string, signal?: AbortSignal): Promise<EntryHead | undefined>;
  /** Stores `image` under `tag`, replacing what was there. */
  write(tag: string, image: Image, signal?: AbortSignal): Promise<void>;
}
