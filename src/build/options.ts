import type { Compression } from "../image/media-types.js";
import type { Platform } from "../image/types.js";

/** Per-registry connection settings resolved from kaniko's TLS/insecure flags. */
export interface RegistryAccess {
  /** Plain HTTP for pushes to any registry (`--insecure`). */
  insecurePush: boolean;
  /** Plain HTTP for pulls from any registry (`--insecure-pull`). */
  insecurePull: boolean;
  /** Plain HTTP for these registries, push and pull (`--insecure-registry`). */
  insecureRegistries: string[];
  /** Skip TLS verification everywhere (`--skip-tls-verify`; kaniko applies it to pulls too). */
  skipTlsVerify: boolean;
  /** Skip TLS verification for these registries (`--skip-tls-verify-registry`). */
  skipTlsVerifyRegistries: string[];
  /** Extra CA files per registry (`--registry-certificate host=path`). */
  registryCertificates: Record<string, string>;
  /** Client cert,key per registry (`--registry-client-cert host=cert,key`). */
  registryClientCerts: Record<string, string>;
  /** Registry map for pulls (`--registry-map`, `--registry-mirror`). */
  registryMap: { from: string; to: string[] }[];
  skipDefaultRegistryFallback: boolean;
  pushRetry: number;
  /**
   * `--credential-helpers`: built-in credential providers the per-host lookup may use (env,
   * google, ecr, acr, gitlab); undefined = all of them, [] = none.
   */
  credentialHelpers?: readonly ("env" | "google" | "ecr" | "acr" | "gitlab")[];
  /** Azure cloud config file with the ACR service principal (kaniko's `--azure-container-registry-config`). */
  azureContainerRegistryConfig?: string;
}

/** Fully resolved, validated options of one build. Frozen by {@link freezeOptions}. */
export interface BuildOptions {
  /** Dockerfile path on the host (already fetched if it was a URL). */
  dockerfilePath: string;
  /** Name shown in error messages (e.g. "Dockerfile"). */
  dockerfileName: string;
  /** Build context directory on the host. */
  contextDir: string;
  destinations: string[];
  buildArgs: Record<string, string | undefined>;
  /**
   * Names of build args marked secret (`--secret-build-arg`): their values reach RUN steps as environment
   * variables but never the image config or history (the build fails if an instruction would store one).
   */
  secretBuildArgs?: string[];
  target?: string;
  noPush: boolean;
  tarPath?: string;
  ociLayoutPath?: string;
  digestFile?: string;
  imageNameWithDigestFile?: string;
  imageNameTagWithDigestFile?: string;
  /** kaniko's `BUILDER_OUTPUT`: a directory where a push writes `images` (JSON lines `{"name","digest"}`). */
  builderOutput?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  platform: Platform;
  isolation: "auto" | "in-place" | "chroot" | "userns";
  /** kiln's state directory (kaniko's /kaniko); temp files, stage roots and spooled layers live below it. */
  stateDir: string;
  ignorePaths: string[];
  ignoreVarRun: boolean;
  /** Unix seconds to clamp timestamps to (`--reproducible` → 0, SOURCE_DATE_EPOCH). */
  epoch?: number;
  reproducible: boolean;
  compression: Compression;
  compressionLevel?: number;
  singleSnapshot: boolean;
  skipPushPermissionCheck: boolean;
  registry: RegistryAccess;
  /** Treat "tag is immutable" push errors (ECR, GAR) as success (`--push-ignore-immutable-tag-errors`). */
  pushIgnoreImmutableTagErrors?: boolean;
  /** kaniko's --snapshot-mode (all modes map onto kiln's back-ends, see chooseSnapshotter). */
  snapshotMode?: "full" | "redo" | "time";
  /** Use the metadata walk even where overlay snapshots work (KILN_SNAPSHOTTER=walk). */
  disableOverlay?: boolean;
  /** Environment the build reads (credentials, SSL_CERT_DIR, proxies, --build-arg KEY values). */
  env: Record<string, string | undefined>;
  /** Secrets for `RUN --mount=type=secret` (`--secret`); values are read only when a RUN mounts them. */
  secrets?: BuildSecret[];
  /** Where `RUN --mount=type=cache` directories persist; default `<stateDir>/cache-mounts`. */
  cacheMountsDir?: string;
  /** Build in place outside a container (`--force`). */
  force?: boolean;
  /**
   * In place: delete the built filesystem when the build ends (`--cleanup`). The build's working
   * directory is then deleted before `build` returns, whatever `BuildDeps.discardDir` says.
   */
  cleanup?: boolean;
  /** Retries of a failed base image pull (`--image-download-retry`). */
  imageDownloadRetry?: number;
  /** Retries of a failed base filesystem extraction (`--image-fs-extract-retry`). */
  imageFsExtractRetry?: number;
  /** Wait before the first of those retries, doubled for each next one (default 1000 ms, as kaniko). */
  retryFirstDelayMs?: number;
  /** The layer cache and base-image cache (`--cache`); undefined when off. */
  cache?: BuildCacheOptions;
  /** The persistent store of unpacked layers (`--layer-store`); undefined when off. */
  layerStore?: LayerStoreSettings;
  /** Every instruction emits a layer, an empty one when it changed nothing (`--force-build-metadata`). */
  forceBuildMetadata?: boolean;
  /** Manifest/config/layer media types of the result; undefined: follow the base image (`--image-format`). */
  imageFormat?: "docker" | "oci";
  /** In place: clean the root (everything the ignore list does not protect) before the build (`--pre-cleanup`). */
  preCleanup?: boolean;
  /** In place: save the container's own files before the build and restore them between stages and after `--cleanup` (`--preserve-context`). */
  preserveContext?: boolean;
  /** Extract the final stage's filesystem even when no step needed it (`--materialize`). */
  materialize?: boolean;
  /** Parse, resolve and check everything; execute no step and write or push nothing (`--dryrun`). */
  dryRun?: boolean;
  /** Leniencies kaniko allows (ignored instructions, options or paths) fail the build (`--strict`). */
  strict?: boolean;
  /**
   * A COPY after which its stage needs no filesystem works on a skeleton of the unextracted root (default
   * true; see build/skeleton-root.ts). A library and test switch: false always extracts the root.
   */
  skeletonCopy?: boolean;
  /**
   * The final stage's layers are pushed to the destinations while the build runs (default true; see
   * build/push-ahead.ts). A library and test switch: false pushes every blob after the build.
   */
  pushAhead?: boolean;
  /**
   * Base layers an output reads again keep a copy of their blob while the build extracts them (default
   * true; see build/kept-bases.ts). A library and benchmark switch: false downloads such a blob again
   * for the output, as kiln did before session 15, and spares the copy's disk space.
   */
  keepBaseCopies?: boolean;
}

/** `--layer-store` settings. */
export interface LayerStoreSettings {
  /** The store directory (shared by concurrent builds). */
  dir: string;
  /** `--layer-store-max-size` in bytes: least-recently-used entries are evicted above it. */
  maxBytes: number;
}

/** Layer-cache settings (kaniko's cache flags plus `--explain-cache`). */
export interface BuildCacheOptions {
  /** `--cache-repo`: a registry repository, `oci:/path` or `dir:/path`; "" = `<destination>/cache`. */
  repo: string;
  /** `--cache-dir`: base images written by the warmer, used for FROM by digest. */
  baseDir: string;
  /** `--cache-ttl` in milliseconds. */
  ttlMs: number;
  /** `--cache-run-layers`. */
  runLayers: boolean;
  /** `--cache-copy-layers`. */
  copyLayers: boolean;
  /** `--no-push-cache`: look entries up but never write them. */
  noPush: boolean;
  /** `--explain-cache`: log the changed input of every miss. */
  explain: boolean;
  /**
   * Stop looking entries up after a stage's first miss, as kaniko does. Not a flag: a benchmark-only
   * switch (env `KILN_BENCH_KANIKO_CACHE_PROBING=1`) to compare kiln's probing with kaniko's.
   */
  stopAtFirstMiss?: boolean;
}

/** A `--secret`: read from a host file or from a variable of {@link BuildOptions.env}. */
export type BuildSecret = { id: string; type: "file"; src: string } | { id: string; type: "env"; env: string };

/**
 * Whether this build may leave files of its own in the state dir for later builds (the spread marker,
 * the isolation probe cache). Not with `--cleanup`, which promises the state dir as found: the build's
 * directory is deleted and nothing else is written there. The one place that decides it.
 */
export function keepsStateFiles(o: Pick<BuildOptions, "cleanup">): boolean {
  return o.cleanup !== true;
}

/**
 * The directory where kiln remembers small facts across builds (the isolation probe's answer, image
 * metadata by digest), or undefined (nothing is remembered): the layer store (`--layer-store`, the user's
 * own directory, kept whatever `--cleanup` says), else the state dir when the build {@link keepsStateFiles}.
 */
export function stateCacheDir(o: Pick<BuildOptions, "cleanup" | "layerStore" | "stateDir">): string | undefined {
  return o.layerStore?.dir ?? (keepsStateFiles(o) ? o.stateDir : undefined);
}

/** Deep-freezes build options so nothing downstream can change them. */
export function freezeOptions(o: BuildOptions): Readonly<BuildOptions> {
  const freeze = (v: unknown): void => {
    if (v && typeof v === "object" && !Object.isFrozen(v)) {
      Object.freeze(v);
      for (const x of Object.values(v)) freeze(x);
    }
  };
  freeze(o);
  return o;
}
