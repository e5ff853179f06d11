import type { Platform } from "../image/index.js";
import { parseReference, type RegistryClient } from "../registry/index.js";
import { DirCacheStore } from "./dir-store.js";
import { OciLayoutCacheStore } from "./layout-store.js";
import { RegistryCacheStore } from "./registry-store.js";
import type { CacheStore } from "./store.js";
import { KilnError } from "../common/errors.js";

/**
 * Chooses the cache backend for `--cache-repo`: `oci:/path` (kaniko's per-entry OCI layouts),
 * `dir:/path` (a shared local content-addressed directory) or a registry repository. An empty
 * value means `<first destination's repository>/cache`, like kaniko.
 */
export function openCacheStore(
  cacheRepo: string,
  destinations: readonly string[],
  registry: RegistryClient,
  platform: Platform,
): CacheStore {
  if (cacheRepo.startsWith("oci:")) return new OciLayoutCacheStore(cacheRepo.slice(4));
  if (cacheRepo.startsWith("dir:")) return new DirCacheStore(cacheRepo.slice(4));
  let repo = cacheRepo;
  if (repo === "") {
    const first = destinations[0];
    if (first === undefined) {
      throw new KilnError(
        "CACHE_REPO_REQUIRED",
        "--cache needs --cache-repo when there is no --destination (kaniko infers <destination>/cache)",
      );
    }
    repo = `${parseReference(first).name}/cache`;
  } else {
    const ref = parseReference(repo);
    repo = ref.name;
  }
  return new RegistryCacheStore(registry, repo, platform);
}
