import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { KilnError } from "../../common/errors.js";
import { mapLimit } from "../../common/map-limit.js";
import { imageFromRaw } from "../assemble.js";
import { digestHex, isDigest, sha256Digest, type Digest } from "../digest.js";
import { layerFromBlobFile } from "../layer/spool.js";
import { verifyingStream } from "../layer/verifying-stream.js";
import { isIndexMediaType, MediaTypes } from "../media-types.js";
import type { Descriptor, Image, ImageConfigFile, ImageIndex, ImageManifest, Layer } from "../types.js";
import { copyFileAtomic, hasFileOfSize, streamToFileAtomic, writeFileAtomic } from "./atomic-file.js";

/** Annotation naming a manifest in an OCI layout's index.json (image-spec annotations.md). */
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";

const LAYOUT_FILE = JSON.stringify({ imageLayoutVersion: "1.0.0" });

/** Layer blobs copied into a layout at once. */
const LAYER_WRITES = 3;

function blobPath(dir: string, d: Digest): string {
  return path.join(dir, "blobs", "sha256", digestHex(d));
}

async function readIndex(dir: string): Promise<ImageIndex | undefined> {
  let raw: string;
  try {
    raw = await readFile(path.join(dir, "index.json"), "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  try {
    const idx = JSON.parse(raw) as ImageIndex;
    if (!Array.isArray(idx.manifests)) throw new Error("no manifests array");
    return idx;
  } catch (e) {
    throw new KilnError("OCI_LAYOUT_INVALID", `${path.join(dir, "index.json")} is not a valid image index`, {
      cause: e,
    });
  }
}

/** Options for {@link writeOciLayout}. */
export interface WriteOciLayoutOptions {
  /** Tag stored as the `org.opencontainers.image.ref.name` annotation; replaces an entry with the same name. */
  refName?: string;
  signal?: AbortSignal;
  /** Rewrite layer blobs that exist already (one was found damaged); each is replaced atomically. */
  rewriteBlobs?: boolean;
  /**
   * index.json names only this image, as kaniko's `--oci-layout-path` leaves it (an earlier build's entries
   * would be read as this build's digest: Tekton's digest exporter takes the only entry, jq `.manifests[0]`).
   * Blobs of earlier images stay.
   */
  onlyThisImage?: boolean;
}

/**
 * Writes an image into an OCI image layout directory (image-spec image-layout.md): `oci-layout`,
 * blobs under `blobs/sha256/`, and `index.json`. Appending to an existing layout keeps its other
 * manifests; an entry with the same ref name is replaced. Blobs already present are not rewritten;
 * every file is written atomically (temp + rename) and layer blobs are verified while copied (by the layer
 * itself when it {@link Layer.verifiesCompressed}), except a {@link Layer.localFile} kiln wrote itself,
 * which is copied as it is (its size checked).
 */
export async function writeOciLayout(dir: string, image: Image, opts?: WriteOciLayoutOptions): Promise<void> {
  await writeFileAtomic(path.join(dir, "oci-layout"), LAYOUT_FILE);
  // Layers are copied a few at a time (each is mostly waiting on its source or the disk), once per digest.
  const unique = [...new Map(image.layers.map((l) => [l.digest, l])).values()];
  await mapLimit(unique, LAYER_WRITES, async (layer) => {
    const file = blobPath(dir, layer.digest);
    if (opts?.rewriteBlobs !== true && (await hasFileOfSize(file, layer.size))) return;
    opts?.signal?.throwIfAborted();
    const local = layer.localFile?.();
    if (local !== undefined) {
      const copied = await copyFileAtomic(local, file, layer.size).then(
        () => true,
        () => false, // the file is gone or changed: its blob is read again below, and verified
      );
      if (copied) return;
    }
    // The check is a stage of the file's pipeline (not wired before it): a small blob that fails it before
    // the pipeline starts would otherwise raise its error with no one listening.
    const trusted = local === undefined && layer.verifiesCompressed === true;
    const check = trusted ? undefined : verifyingStream(layer.digest, layer.size);
    await streamToFileAtomic(file, await layer.openCompressed(opts?.signal), opts?.signal, check);
  });
  const configDigest = sha256Digest(image.rawConfig);
  await writeFileAtomic(blobPath(dir, configDigest), image.rawConfig);
  await writeFileAtomic(blobPath(dir, image.digest), image.rawManifest);

  const existing = opts?.onlyThisImage === true ? undefined : await readIndex(dir);
  const refName = opts?.refName;
  const keep = (existing?.manifests ?? []).filter((m) => {
    const name = m.annotations?.[REF_NAME_ANNOTATION];
    if (refName !== undefined) return name !== refName;
    return !(name === undefined && m.digest === image.digest);
  });
  const platform = {
    architecture: image.config.architecture,
    os: image.config.os,
    ...(image.config.variant ? { variant: image.config.variant } : {}),
  };
  const desc: Descriptor = {
    mediaType: image.mediaType,
    digest: image.digest,
    size: image.rawManifest.length,
    ...(refName !== undefined ? { annotations: { [REF_NAME_ANNOTATION]: refName } } : {}),
    ...(platform.architecture && platform.os ? { platform } : {}),
  };
  const index: ImageIndex = {
    ...(existing ?? {}),
    schemaVersion: 2,
    mediaType: MediaTypes.ociIndex,
    manifests: [...keep, desc],
  };
  await writeFileAtomic(path.join(dir, "index.json"), JSON.stringify(index));
}

/** Options for {@link readOciLayout}: select the manifest by ref name or digest (else it must be the only one). */
export interface ReadOciLayoutOptions {
  refName?: string;
  digest?: Digest;
}

async function readVerifiedBlob(dir: string, d: Descriptor, what: string): Promise<Buffer> {
  if (!isDigest(d.digest)) {
    throw new KilnError("OCI_LAYOUT_INVALID", `${what} in ${dir} has unsupported digest ${JSON.stringify(d.digest)}`);
  }
  const file = blobPath(dir, d.digest);
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (e) {
    throw new KilnError("OCI_LAYOUT_INVALID", `${what} ${d.digest} is missing from the OCI layout (${file})`, {
      cause: e,
    });
  }
  if (sha256Digest(data) !== d.digest || data.length !== d.size) {
    throw new KilnError(
      "DIGEST_MISMATCH",
      `${what} ${file} does not match its descriptor (digest ${d.digest}, size ${d.size}); the layout is corrupt`,
    );
  }
  return data;
}

function parseJson<T>(data: Buffer, what: string): T {
  try {
    return JSON.parse(data.toString("utf8")) as T;
  } catch (e) {
    throw new KilnError("OCI_LAYOUT_INVALID", `${what} is not valid JSON`, { cause: e });
  }
}

/**
 * Reads one image from an OCI image layout. Manifest and config are verified against their
 * descriptors; layers are backed by the blob files and verified (digest and size) whenever read.
 * Throws OCI_LAYOUT_INVALID when the layout, the selection or a blob is missing or ambiguous.
 */
export async function readOciLayout(dir: string, opts?: ReadOciLayoutOptions): Promise<Image> {
  const index = await readIndex(dir);
  if (!index) throw new KilnError("OCI_LAYOUT_INVALID", `${dir} is not an OCI image layout (no index.json)`);
  let candidates = index.manifests;
  if (opts?.digest) candidates = candidates.filter((m) => m.digest === opts.digest);
  if (opts?.refName !== undefined) {
    candidates = candidates.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] === opts.refName);
  }
  const wanted = opts?.digest ?? (opts?.refName !== undefined ? `ref ${JSON.stringify(opts.refName)}` : "an image");
  if (candidates.length === 0) throw new KilnError("OCI_LAYOUT_INVALID", `no manifest for ${wanted} in ${dir}`);
  const desc = candidates[0] as Descriptor;
  if (candidates.length > 1 && !candidates.every((c) => c.digest === desc.digest)) {
    throw new KilnError(
      "OCI_LAYOUT_INVALID",
      `${dir} holds ${candidates.length} manifests for ${wanted}; select one by ref name or digest`,
    );
  }
  if (isIndexMediaType(desc.mediaType)) {
    throw new KilnError(
      "OCI_LAYOUT_INVALID",
      `${desc.digest} in ${dir} is an image index; select a single-platform manifest by digest`,
    );
  }
  const rawManifest = await readVerifiedBlob(dir, desc, "manifest");
  const manifest = parseJson<ImageManifest>(rawManifest, `manifest ${desc.digest}`);
  if (!manifest.config || !Array.isArray(manifest.layers)) {
    throw new KilnError("OCI_LAYOUT_INVALID", `manifest ${desc.digest} in ${dir} is not an image manifest`);
  }
  const rawConfig = await readVerifiedBlob(dir, manifest.config, "config");
  const config = parseJson<ImageConfigFile>(rawConfig, `config ${manifest.config.digest}`);
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) {
    throw new KilnError(
      "IMAGE_INVALID",
      `image ${desc.digest} in ${dir} has ${manifest.layers.length} layers but ${diffIds.length} diff_ids`,
    );
  }
  const layers: Layer[] = [];
  for (let i = 0; i < manifest.layers.length; i++) {
    const l = manifest.layers[i] as Descriptor;
    const diffId = diffIds[i] as string;
    if (!isDigest(l.digest) || !isDigest(diffId)) {
      throw new KilnError("OCI_LAYOUT_INVALID", `layer ${i} of ${desc.digest} in ${dir} has an unsupported digest`);
    }
    const file = blobPath(dir, l.digest);
    if (!(await hasFileOfSize(file, l.size))) {
      throw new KilnError("OCI_LAYOUT_INVALID", `layer blob ${file} is missing or has the wrong size (want ${l.size})`);
    }
    layers.push(
      layerFromBlobFile(file, {
        mediaType: l.mediaType,
        digest: l.digest,
        diffId,
        size: l.size,
        verify: true,
        ...(l.annotations ? { annotations: l.annotations } : {}),
      }),
    );
  }
  return imageFromRaw(rawManifest, manifest, rawConfig, config, layers, manifest.mediaType ?? desc.mediaType);
}
