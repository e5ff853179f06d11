import type { Readable } from "node:stream";
import type { Digest } from "./digest.js";

/** OCI content descriptor (image-spec descriptor.md). */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

/** Platform of an image (image-spec image-index.md). */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  "os.version"?: string;
  "os.features"?: string[];
}

/** Image manifest (OCI v1 or Docker v2.2 — the same JSON shape). */
export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
  subject?: Descriptor;
  artifactType?: string;
}

/** Image index / Docker manifest list. */
export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** Healthcheck as stored in the image config (durations in nanoseconds). */
export interface HealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** The runtime part of an image config (`config` in the config JSON). Docker field names. */
export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, Record<string, never>>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  Healthcheck?: HealthConfig;
  OnBuild?: string[] | null;
  Shell?: string[];
  ArgsEscaped?: boolean;
}

/** One history entry of the image config. */
export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** Image configuration (image-spec config.md; Docker adds a few fields we preserve verbatim). */
export interface ImageConfigFile {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  "os.version"?: string;
  config?: ContainerConfig;
  rootfs: { type: "layers"; diff_ids: Digest[] };
  history?: HistoryEntry[];
  /** Unknown fields of a base config are kept so a re-serialised config loses nothing. */
  [extra: string]: unknown;
}

/** Where a blob can be found in a registry: lets a push mount it instead of uploading it. */
export interface BlobOrigin {
  registry: string;
  repository: string;
}

/**
 * An immutable, re-openable filesystem layer. All digests are known up front: registry layers take
 * them from the manifest and config, layers kiln creates compute them while spooling to disk.
 * Each open*() call returns a NEW stream; the compressed stream of a remote layer is verified
 * against `digest` while it is read and errors at EOF on a mismatch.
 */
export interface Layer {
  readonly mediaType: string;
  /** Digest of the compressed blob (`manifest.layers[].digest`). */
  readonly digest: Digest;
  /** Digest of the uncompressed tar (`config.rootfs.diff_ids[]`). */
  readonly diffId: Digest;
  /** Size of the compressed blob in bytes. */
  readonly size: number;
  readonly annotations?: Record<string, string>;
  /** Registry repositories known to hold this blob (cross-repository mount candidates). */
  readonly origins?: readonly BlobOrigin[];
  /**
   * True when every stream of {@link openCompressed} fails, before it ends, unless its bytes hash to
   * `digest` with `size` bytes (a registry blob, a blob file read with verification): sinks that copy the
   * blob need not hash it again.
   */
  readonly verifiesCompressed?: boolean;
  /**
   * A file on local disk holding exactly the compressed blob, which kiln wrote itself from bytes it made or
   * verified (a step's spooled layer, a base layer's blob kept while the build extracted it), or undefined
   * while there is none (yet). A sink may copy the file as it is; an upload to a registry that cannot mount
   * the blob costs no download then. Absent: the layer never has one.
   */
  readonly localFile?: () => string | undefined;
  openCompressed(signal?: AbortSignal): Promise<Readable>;
  openUncompressed(signal?: AbortSignal): Promise<Readable>;
}

/**
 * An immutable single-platform image. Manifest and config are small and held in memory (their raw
 * bytes are what gets pushed, so a base image pushed unchanged keeps its digest); layer contents
 * are lazy and only read when a sink or the build needs them.
 */
export interface Image {
  readonly mediaType: string;
  readonly rawManifest: Uint8Array;
  readonly manifest: ImageManifest;
  /** sha256 of rawManifest. */
  readonly digest: Digest;
  readonly rawConfig: Uint8Array;
  readonly config: ImageConfigFile;
  readonly layers: readonly Layer[];
}
