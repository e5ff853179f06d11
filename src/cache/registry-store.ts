import type { Image, Platform } from "../image/index.js";
import { parseReference, RegistryError, type ManifestOnly, type RegistryClient } from "../registry/index.js";
import { entryFromAnnotations, entryFromImage, type EntryHead } from "./entry.js";
import type { CacheStore, ManifestView } from "./store.js";

/**
 * kaniko's registry cache: entry `<repo>:<key>` is a one-layer image in the cache repository.
 * A cached layer pulled from here keeps its registry origin, so pushing the final image to the same
 * registry mounts the blob instead of downloading and uploading it.
 */
export class RegistryCacheStore implements CacheStore {
  readonly description: string;
  /** Every read is a round trip: a stage's chain record replaces one manifest request per step. */
  readonly keepsChains = true;
  private readonly client: RegistryClient;
  private readonly platform: Platform;

  /** `repo` is `registry/repository` without tag (e.g. `registry.example/app/cache`). */
  constructor(client: RegistryClient, repo: string, platform: Platform) {
    parseReference(`${repo}:probe`); // validates the repository name early
    this.client = client;
    this.description = repo;
    this.platform = platform;
  }

  async read(tag: string, signal?: AbortSignal): Promise<Image | undefined> {
    const ref = parseReference(`${this.description}:${tag}`);
    try {
      return await this.client.pullImage(ref, { platform: this.platform, ...(signal ? { signal } : {}) });
    } catch (e) {
      if (e instanceof RegistryError && (e.status === 404 || e.code === "REGISTRY_NOT_FOUND")) return undefined;
      throw e;
    }
  }

  /** The manifest under `tag`: one request; its layers stay in the registry until opened. */
  async readManifest(tag: string, signal?: AbortSignal): Promise<ManifestView | undefined> {
    const m = await this.manifest(tag, signal);
    return m && { annotations: m.manifest.annotations, layerCount: m.manifest.layers.length, layer: m.layer };
  }

  private async manifest(tag: string, signal?: AbortSignal): Promise<ManifestOnly | undefined> {
    const ref = parseReference(`${this.description}:${tag}`);
    try {
      return await this.client.getImageManifest(ref, signal);
    } catch (e) {
      if (e instanceof RegistryError && (e.status === 404 || e.code === "REGISTRY_NOT_FOUND")) return undefined;
      throw e;
    }
  }

  /** One manifest request for an annotated entry; an older entry's config is fetched without re-reading the manifest. */
  async readHead(tag: string, signal?: AbortSignal): Promise<EntryHead | undefined> {
    const manifest = await this.manifest(tag, signal);
    if (!manifest) return undefined;
    const head = entryFromAnnotations(manifest.manifest.annotations, manifest.manifest.layers.length, (diffId) =>
      manifest.layer(0, diffId),
    );
    if (head) return head;
    const entry = entryFromImage(await manifest.image(signal));
    return entry ? { entry, inputsComplete: true } : undefined;
  }

  async write(tag: string, image: Image, signal?: AbortSignal): Promise<void> {
    await this.client.pushImage(parseReference(`${this.description}:${tag}`), image, signal ? { signal } : {});
  }
}
