import { readFile, rm, stat } from "node:fs/promises";
import { writeDockerArchive, type Digest, type Platform } from "../image/index.js";
import type { Reference, RegistryClient } from "../registry/index.js";
import { writeAtomic } from "./atomic.js";
import { baseCachePaths } from "./base-cache.js";

/** Options of {@link warmImage}. */
export interface WarmOptions {
  cacheDir: string;
  /** Overwrite an existing entry (`--force`). */
  force: boolean;
  platform: Platform;
  signal?: AbortSignal;
}

/** What {@link warmImage} did. */
export interface WarmResult {
  digest: Digest;
  /** "written": stored now; "present": already cached (kaniko counts an expired entry as present too). */
  status: "written" | "present";
}

async function present(cacheDir: string, digest: Digest): Promise<boolean> {
  const p = baseCachePaths(cacheDir, digest);
  const a = await stat(p.archive).catch(() => undefined);
  const m = await readFile(p.manifest).catch(() => undefined);
  return a?.isFile() === true && m !== undefined;
}

/**
 * kaniko's warmer for one image: resolves it for `platform`, and unless already cached writes
 * `<cacheDir>/<manifest digest>` (a docker-archive) and `<cacheDir>/<digest>.json` (the raw
 * manifest), both atomically. A reference by digest that is already cached is not even resolved.
 */
export async function warmImage(registry: RegistryClient, ref: Reference, o: WarmOptions): Promise<WarmResult> {
  if (ref.digest !== undefined && !o.force && (await present(o.cacheDir, ref.digest))) {
    return { digest: ref.digest, status: "present" };
  }
  const image = await registry.pullImage(ref, { platform: o.platform, ...(o.signal ? { signal: o.signal } : {}) });
  if (!o.force && (await present(o.cacheDir, image.digest))) return { digest: image.digest, status: "present" };
  const p = baseCachePaths(o.cacheDir, image.digest);
  await rm(p.manifest, { force: true });
  await writeDockerArchive(p.archive, image, [], o.signal ? { signal: o.signal } : {});
  await writeAtomic(p.manifest, image.rawManifest);
  return { digest: image.digest, status: "written" };
}
