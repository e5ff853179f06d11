import type { Digest } from "../image/digest.js";
import type { Descriptor } from "../image/types.js";
import { RegistryError } from "./errors.js";
import { parseManifest } from "./manifest.js";

/** Repository key of the push state: `registry/repository`. */
function repoKey(registry: string, repository: string): string {
  return `${registry}/${repository}`;
}

/**
 * What one client knows about the blobs of the repositories it pushes to:
 * - verified blobs: a HEAD found them, or this client mounted or uploaded them (or is doing so:
 *   concurrent pushes of one blob share one promise);
 * - assumed blobs: the config and layers of the manifest a destination tag held when it was read
 *   at build start ({@link RegistryClient.prefetchPushState}). A push skips their existence
 *   checks; a manifest PUT that the registry refuses then makes the push forget them and check
 *   every blob again (see {@link isStaleAssumption}).
 */
export class PushState {
  private readonly verified = new Map<string, Promise<void>>();
  private readonly assumed = new Map<string, Promise<readonly Digest[]>[]>();

  /** Runs `push` for a blob of a repository unless it is known there or already being pushed. */
  once(registry: string, repository: string, digest: Digest, push: () => Promise<void>): Promise<void> {
    const key = `${repoKey(registry, repository)}@${digest}`;
    let p = this.verified.get(key);
    if (p === undefined) {
      p = push();
      this.verified.set(key, p);
      const mine = p;
      p.catch(() => {
        if (this.verified.get(key) === mine) this.verified.delete(key);
      });
    }
    return p;
  }

  /** Records blobs (resolved later; a rejection counts as none) as present in a repository. */
  assume(registry: string, repository: string, digests: Promise<readonly Digest[]>): void {
    const key = repoKey(registry, repository);
    const safe = digests.catch((): readonly Digest[] => []);
    const list = this.assumed.get(key);
    if (list === undefined) this.assumed.set(key, [safe]);
    else list.push(safe);
  }

  /** The blobs assumed present in a repository (waits for reads still in flight). */
  async assumedIn(registry: string, repository: string): Promise<ReadonlySet<Digest>> {
    const list = this.assumed.get(repoKey(registry, repository));
    if (list === undefined) return new Set();
    return new Set((await Promise.all(list)).flat());
  }

  /** Drops a repository's assumptions and what this client verified there about `digests`. */
  forget(registry: string, repository: string, digests: Iterable<Digest>): void {
    const key = repoKey(registry, repository);
    this.assumed.delete(key);
    for (const d of digests) this.verified.delete(`${key}@${d}`);
  }
}

/** Whether a descriptor names a blob a registry stores (not a foreign/non-distributable layer served from `urls`). */
function stored(d: Descriptor): boolean {
  const urls = (d as { urls?: unknown }).urls;
  return !(Array.isArray(urls) && urls.length > 0) && !/(nondistributable|foreign)/.test(d.mediaType);
}

/**
 * The blobs a repository must hold for a manifest it serves: the config and the registry-stored
 * layers of an image manifest. An index (its images' blobs are not named), a manifest kiln cannot
 * parse, or anything else → none.
 */
export function blobsOfManifest(raw: Uint8Array, contentType: string | undefined): Digest[] {
  let parsed;
  try {
    parsed = parseManifest(raw, contentType, "destination");
  } catch {
    return [];
  }
  if (parsed.kind !== "manifest") return [];
  const m = parsed.manifest;
  return [...new Set([m.config, ...m.layers].filter(stored).map((d) => d.digest))];
}

/**
 * Whether a refused manifest PUT may be the registry lacking a blob that was assumed present: the
 * distribution spec's MANIFEST_BLOB_UNKNOWN (400), BLOB_UNKNOWN as some registries answer, or any
 * other 400/404 (registries differ in codes and statuses here; checking the blobs and retrying once
 * costs little). Not authentication, permission, rate-limit or server errors.
 */
export function isStaleAssumption(e: unknown): boolean {
  return e instanceof RegistryError && (e.status === 400 || e.status === 404);
}
