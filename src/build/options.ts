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
  target?: string;
  noPush: boolean;
  tarPath?: string;
  ociLayoutPath?: string;
  digestFile?: string;
  imageNameWithDigestFile?: string;
  imageNameTagWithDigestFile?: string;
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
  /** In place: delete the built filesystem when the build ends (`--cleanup`). */
  cleanup?: boolean;
  /** Retries of a failed base image pull (`--image-download-retry`). */
  imageDownloadRetry?: number;
  /** Retries of a failed base filesystem extraction (`--image-fs-extract-retry`). */
  imageFsExtractRetry?: number;
  /** The layer cache and base-image cache (`--cache`); undefined when off. */
  cache?: BuildCacheOptions;
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
}

/** A `--secret`: read from a host file or from a variable of {@link BuildOptions.env}. */
export type BuildSecret = { id: string; type: "file"; src: string } | { id: string; type: "env"; env: string };

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
