import { createReadStream } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { KilnError } from "../common/errors.js";
import {
  decompressAuto,
  imageFromRaw,
  isDigest,
  isIndexMediaType,
  sha256Digest,
  verifyingStream,
  type Digest,
  type Image,
  type ImageConfigFile,
  type ImageIndex,
  type ImageManifest,
  type Platform,
  type Layer,
} from "../image/index.js";
import { selectPlatform, type Reference, type RegistryClient } from "../registry/index.js";
import { indexTar, type MemberRange } from "./archive-index.js";

/** Paths of a base-image cache entry, named like kaniko's warmer: `<dir>/<digest>` and `<dir>/<digest>.json`. */
export function baseCachePaths(cacheDir: string, digest: Digest): { archive: string; manifest: string } {
  const archive = path.join(cacheDir, digest);
  return { archive, manifest: `${archive}.json` };
}

/**
 * Loads a base image the warmer stored in `cacheDir` (a docker-archive plus the raw manifest), by
 * manifest digest. Returns undefined when absent or older than `ttlMs` (file mtime, like kaniko).
 * Manifest and config are verified; layers are streamed from their byte ranges inside the archive
 * and verified against their digests while read.
 */
export async function loadCachedBase(
  cacheDir: string,
  digest: Digest,
  ttlMs: number,
  now: Date,
): Promise<Image | undefined> {
  const { archive, manifest: manifestFile } = baseCachePaths(cacheDir, digest);
  const st = await stat(archive).catch(() => undefined);
  if (!st?.isFile()) return undefined;
  if (st.mtimeMs + ttlMs <= now.getTime()) return undefined;
  let rawManifest: Buffer;
  try {
    rawManifest = await readFile(manifestFile);
  } catch {
    return undefined;
  }
  const bad = (why: string): KilnError =>
    new KilnError(
      "BASE_CACHE_INVALID",
      `base-image cache entry ${archive} ${why}; delete it or re-run the warmer with --force`,
    );
  if (sha256Digest(rawManifest) !== digest) throw bad(`has a manifest that does not hash to ${digest}`);
  const manifest = JSON.parse(rawManifest.toString("utf8")) as ImageManifest;
  if (isIndexMediaType(manifest.mediaType) || !manifest.config || !Array.isArray(manifest.layers)) {
    throw bad("is not a single-platform image");
  }
  const members = await indexTar(archive);
  const readMember = async (r: MemberRange): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    for await (const c of createReadStream(archive, { start: r.offset, end: r.offset + r.size - 1 }))
      chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };
  const mj = members.get("manifest.json");
  if (!mj) throw bad("has no manifest.json");
  const entries = JSON.parse((await readMember(mj)).toString("utf8")) as { Config: string; Layers: string[] }[];
  const first = entries[0];
  if (!first || !Array.isArray(first.Layers) || first.Layers.length !== manifest.layers.length) {
    throw bad("does not match its manifest");
  }
  const cfgRange = members.get(first.Config);
  if (!cfgRange) throw bad(`lacks its config ${first.Config}`);
  const rawConfig = await readMember(cfgRange);
  if (sha256Digest(rawConfig) !== manifest.config.digest) throw bad("has a config that does not match the manifest");
  const config = JSON.parse(rawConfig.toString("utf8")) as ImageConfigFile;
  const diffIds = config.rootfs?.diff_ids ?? [];
  const layers: Layer[] = manifest.layers.map((d, i) => {
    const r = members.get(first.Layers[i] as string);
    const diffId = diffIds[i];
    if (!r || r.size !== d.size || !diffId || !isDigest(diffId) || !isDigest(d.digest)) {
      throw bad(`has a missing or wrong layer ${i}`);
    }
    const openCompressed = (signal?: AbortSignal): Promise<Readable> => {
      const raw = createReadStream(archive, {
        start: r.offset,
        end: r.offset + r.size - 1,
        ...(signal ? { signal } : {}),
      });
      const v = verifyingStream(d.digest, d.size);
      raw.on("error", (e) => v.destroy(e));
      v.on("close", () => raw.destroy());
      return Promise.resolve(raw.pipe(v));
    };
    const layer: Layer = {
      mediaType: d.mediaType,
      digest: d.digest,
      diffId,
      size: d.size,
      openCompressed,
      openUncompressed: async (signal?: AbortSignal) => decompressAuto(await openCompressed(signal)),
    };
    return layer;
  });
  return imageFromRaw(rawManifest, manifest, rawConfig, config, layers, manifest.mediaType ?? "");
}

/** Options of {@link findCachedBase}. */
export interface FindCachedBaseOptions {
  cacheDir: string;
  ttlMs: number;
  now: Date;
  platform: Platform;
  signal?: AbortSignal;
}

/**
 * kaniko's executor lookup in the warmer's cache: a reference by digest is served from `cacheDir`
 * without contacting the registry; a tag is first resolved to a manifest digest (one manifest
 * request, index → platform) and then looked up. Returns undefined when not cached.
 */
export async function findCachedBase(
  registry: RegistryClient,
  ref: Reference,
  o: FindCachedBaseOptions,
): Promise<Image | undefined> {
  if (ref.digest !== undefined) {
    const direct = await loadCachedBase(o.cacheDir, ref.digest, o.ttlMs, o.now);
    if (direct) return direct;
  }
  // Resolving a tag costs a manifest request that the pull repeats: only worth it when the warmer
  // left entries (no directory, or one without an entry, is the common case of a build without a warmer).
  if (!(await hasEntries(o.cacheDir))) return undefined;
  const fetched = await registry.getManifest(ref, o.signal);
  if (!fetched) return undefined;
  let digest = fetched.digest;
  if (isIndexMediaType(fetched.mediaType)) {
    const index = JSON.parse(Buffer.from(fetched.raw).toString("utf8")) as ImageIndex;
    const chosen = selectPlatform(index.manifests ?? [], o.platform);
    if (!chosen) return undefined;
    digest = chosen.digest;
  }
  return loadCachedBase(o.cacheDir, digest, o.ttlMs, o.now);
}

/** Whether `cacheDir` holds at least one warmer entry (`sha256:…` archive); false when it is missing. */
async function hasEntries(cacheDir: string): Promise<boolean> {
  const names = await readdir(cacheDir).catch(() => [] as string[]);
  return names.some((n) => n.startsWith("sha256:") && !n.endsWith(".json"));
}
