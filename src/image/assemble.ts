import { sha256Digest } from "./digest.js";
import { configMediaType, manifestMediaType, type ManifestFamily } from "./media-types.js";
import type { Image, ImageConfigFile, ImageManifest, Layer } from "./types.js";

/** Options for {@link assembleImage}. */
export interface AssembleOptions {
  family: ManifestFamily;
  config: ImageConfigFile;
  layers: readonly Layer[];
  annotations?: Record<string, string>;
}

/**
 * Builds an Image value from a config and layers: serialises the config (with `rootfs.diff_ids`
 * taken from the layers, so the two can never disagree) and the manifest. Pure, no I/O.
 */
export function assembleImage(opts: AssembleOptions): Image {
  const config: ImageConfigFile = {
    ...opts.config,
    rootfs: { type: "layers", diff_ids: opts.layers.map((l) => l.diffId) },
  };
  const rawConfig = Buffer.from(JSON.stringify(config));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: manifestMediaType(opts.family),
    config: { mediaType: configMediaType(opts.family), digest: sha256Digest(rawConfig), size: rawConfig.length },
    layers: opts.layers.map((l) => ({
      mediaType: l.mediaType,
      digest: l.digest,
      size: l.size,
      ...(l.annotations && opts.family === "oci" ? { annotations: l.annotations } : {}),
    })),
    ...(opts.annotations && Object.keys(opts.annotations).length > 0 && opts.family === "oci"
      ? { annotations: opts.annotations }
      : {}),
  };
  const rawManifest = Buffer.from(JSON.stringify(manifest));
  return {
    mediaType: manifest.mediaType as string,
    rawManifest,
    manifest,
    digest: sha256Digest(rawManifest),
    rawConfig,
    config,
    layers: opts.layers,
  };
}

/**
 * Wraps already-serialised manifest and config bytes (e.g. from a registry or layout) into an
 * Image without re-serialising, so the digest is preserved. The caller has verified the bytes.
 */
export function imageFromRaw(
  rawManifest: Uint8Array,
  manifest: ImageManifest,
  rawConfig: Uint8Array,
  config: ImageConfigFile,
  layers: readonly Layer[],
  mediaType: string,
): Image {
  return { mediaType, rawManifest, manifest, digest: sha256Digest(rawManifest), rawConfig, config, layers };
}
