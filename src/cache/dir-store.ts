import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { KilnError } from "../common/errors.js";
import {
  digestHex,
  imageFromRaw,
  isDigest,
  layerFromBlobFile,
  sha256Digest,
  verifyingStream,
  type Digest,
  type Image,
  type ImageConfigFile,
  type ImageManifest,
  type Layer,
} from "../image/index.js";
import { MAX_MANIFEST_BYTES } from "../registry/index.js";
import { hasSize, streamAtomic, writeAtomic } from "./atomic.js";
import { localTag, type CacheStore } from "./store.js";

/**
 * A local-directory cache (`--cache-repo=dir:/path`): content-addressed blobs shared by all entries
 * in `blobs/sha256/<hex>` and one small file per tag in `refs/<tag>` naming its manifest digest.
 * Every file is written by temp file + rename and blobs are immutable, so any number of builds can
 * share the directory without locks; the last writer of a tag wins.
 */
export class DirCacheStore implements CacheStore {
  readonly description: string;
  /** Blobs are shared, so a chain record costs one small manifest and replaces a file read per step. */
  readonly keepsChains = true;
  private readonly dir: string;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
    this.description = `dir:${this.dir}`;
  }

  private blob(d: Digest): string {
    return path.join(this.dir, "blobs", "sha256", digestHex(d));
  }

  private async verifiedBlob(d: Digest, size: number | undefined, what: string): Promise<Buffer> {
    // A damaged store's huge file is not read whole: a config has its descriptor's size, a manifest at
    // most a registry manifest's.
    const actual = (await stat(this.blob(d))).size;
    if (size !== undefined ? actual !== size : actual > MAX_MANIFEST_BYTES) {
      throw new KilnError("CACHE_CORRUPT", `${what} ${this.blob(d)} does not match its digest ${d}; delete it`);
    }
    const data = await readFile(this.blob(d));
    if (sha256Digest(data) !== d || (size !== undefined && data.length !== size)) {
      throw new KilnError("CACHE_CORRUPT", `${what} ${this.blob(d)} does not match its digest ${d}; delete it`);
    }
    return data;
  }

  async read(tag: string): Promise<Image | undefined> {
    let ref: string;
    try {
      ref = (await readFile(path.join(this.dir, "refs", localTag(tag)), "utf8")).trim();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
    if (!isDigest(ref)) throw new KilnError("CACHE_CORRUPT", `${path.join(this.dir, "refs", tag)} is not a digest`);
    const rawManifest = await this.verifiedBlob(ref, undefined, "manifest");
    const manifest = JSON.parse(rawManifest.toString("utf8")) as ImageManifest;
    // Digests become file names here: one that is not a digest (a planted entry) is damage, not a path.
    const corrupt = (what: string): KilnError =>
      new KilnError("CACHE_CORRUPT", `cache entry ${ref} in ${this.dir} names ${what} that is not a digest`);
    if (!isDigest(String(manifest.config?.digest))) throw corrupt("a config");
    const rawConfig = await this.verifiedBlob(manifest.config.digest, manifest.config.size, "config");
    const config = JSON.parse(rawConfig.toString("utf8")) as ImageConfigFile;
    const layers: Layer[] = [];
    for (const [i, l] of manifest.layers.entries()) {
      const diffId = config.rootfs.diff_ids[i];
      if (!isDigest(String(l.digest)) || (diffId !== undefined && !isDigest(String(diffId)))) throw corrupt("a layer");
      if (!diffId || !(await hasSize(this.blob(l.digest), l.size))) return undefined; // blob pruned: a miss
      layers.push(
        layerFromBlobFile(this.blob(l.digest), {
          mediaType: l.mediaType,
          digest: l.digest,
          diffId,
          size: l.size,
          verify: true,
        }),
      );
    }
    return imageFromRaw(rawManifest, manifest, rawConfig, config, layers, manifest.mediaType ?? "");
  }

  /** Blobs present with the right size are kept, unless `replace` says the entry was found damaged. */
  async write(tag: string, image: Image, signal?: AbortSignal, replace?: boolean): Promise<void> {
    const refFile = path.join(this.dir, "refs", localTag(tag)); // checked before anything is written
    for (const l of image.layers) {
      const file = this.blob(l.digest);
      if (replace !== true && (await hasSize(file, l.size))) continue;
      const src = await l.openCompressed(signal);
      await streamAtomic(file, src, verifyingStream(l.digest, l.size), signal);
    }
    const cfg = this.blob(image.manifest.config.digest);
    if (!(await hasSize(cfg, image.rawConfig.length))) await writeAtomic(cfg, image.rawConfig);
    const man = this.blob(image.digest);
    if (!(await hasSize(man, image.rawManifest.length))) await writeAtomic(man, image.rawManifest);
    await writeAtomic(refFile, image.digest);
  }
}
