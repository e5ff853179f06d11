import path from "node:path";
import { KilnError } from "../common/errors.js";
import { readOciLayout, writeOciLayout, type Image } from "../image/index.js";
import { localTag, type CacheStore } from "./store.js";

/**
 * kaniko's OCI-layout cache (`--cache-repo=oci:/path`): each entry is its own OCI image layout
 * directory named `/path:<tag>`, exactly where kaniko puts it. One directory per entry means
 * concurrent builds never contend for a shared `index.json`.
 */
export class OciLayoutCacheStore implements CacheStore {
  readonly description: string;
  private readonly base: string;

  constructor(base: string) {
    this.base = path.resolve(base);
    this.description = `oci:${this.base}`;
  }

  private dir(tag: string): string {
    return `${this.base}:${localTag(tag)}`;
  }

  async read(tag: string): Promise<Image | undefined> {
    try {
      return await readOciLayout(this.dir(tag));
    } catch (e) {
      if (e instanceof KilnError && e.code === "OCI_LAYOUT_INVALID" && /no index\.json/.test(e.message)) {
        return undefined;
      }
      throw e;
    }
  }

  /**
   * Writes the entry's layout (each file atomically, so concurrent readers see the old or the new one). A
   * blob file of the right size is kept as it is, unless `replace` says the entry was found damaged.
   */
  async write(tag: string, image: Image, signal?: AbortSignal, replace?: boolean): Promise<void> {
    await writeOciLayout(this.dir(tag), image, {
      refName: "latest",
      ...(signal ? { signal } : {}),
      ...(replace ? { rewriteBlobs: true } : {}),
    });
  }
}
