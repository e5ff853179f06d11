import type { GitOptions } from "./types.js";
import type { ParseOptions, ParseResult } from "./parse-result.js";
import type { SecretSpec } from "./secret-spec.js";
import type { Env } from "./resolve.js";
import { EXECUTOR_FLAGS } from "./executor-flags.js";
import { parseCommand } from "./parse-command.js";
import { resolveBuildArgs, ValueReader } from "./resolve.js";
import { parseSecretSpec } from "./secret-spec.js";
import { UsageError } from "./usage-error.js";

/** Log level names (logrus). */
export type LogLevelName = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "panic";
/** Log output formats (kaniko --log-format). */
export type LogFormatName = "color" | "text" | "json";
/** RUN isolation back-ends (design.md §3). */
export type IsolationMode = "auto" | "in-place" | "chroot" | "userns";

/** Typed, validated options of `executor` / `kiln build`: one camelCase field per flag. */
export interface ExecutorOptions {
  // Build input
  dockerfile: string;
  context: string;
  contextSubPath: string;
  bucket: string;
  git: GitOptions;
  // Build behaviour
  /** `KEY=VALUE`, or `KEY` alone when KEY was not in the environment (declared without value). */
  buildArgs: string[];
  target: string;
  /** "" means the host platform. */
  customPlatform: string;
  skipUnusedStages: boolean;
  snapshotMode: "full" | "redo" | "time";
  singleSnapshot: boolean;
  useNewRun: boolean;
  ignoreVarRun: boolean;
  ignorePaths: string[];
  cleanup: boolean;
  force: boolean;
  forceBuildMetadata: boolean;
  kanikoDir: string;
  imageFsExtractRetry: number;
  imageDownloadRetry: number;
  secrets: SecretSpec[];
  preserveContext: boolean;
  preCleanup: boolean;
  materialize: boolean;
  dryrun: boolean;
  // Outputs
  destinations: string[];
  noPush: boolean;
  tarPath: string;
  ociLayoutPath: string;
  digestFile: string;
  imageNameWithDigestFile: string;
  imageNameTagWithDigestFile: string;
  pushRetry: number;
  pushIgnoreImmutableTagErrors: boolean;
  skipPushPermissionCheck: boolean;
  /** Raw `key=value` strings, in order. */
  labels: string[];
  annotations: Record<string, string>;
  reproducible: boolean;
  /** undefined: not set (gzip). */
  compression: "gzip" | "zstd" | undefined;
  compressionLevel: number;
  /** undefined: follow the base image. */
  imageFormat: "docker" | "oci" | undefined;
  // Cache
  cache: boolean;
  cacheRepo: string;
  cacheDir: string;
  cacheTtlMs: number;
  cacheCopyLayers: boolean;
  cacheRunLayers: boolean;
  compressedCaching: boolean;
  noPushCache: boolean;
  // Registry and TLS
  insecure: boolean;
  skipTlsVerify: boolean;
  insecurePull: boolean;
  skipTlsVerifyPull: boolean;
  insecureRegistries: string[];
  skipTlsVerifyRegistries: string[];
  /** registry host → CA PEM path. */
  registryCertificates: Record<string, string>;
  /** registry host → "cert,key" paths. */
  registryClientCerts: Record<string, string>;
  registryMirrors: string[];
  /** original registry → replacements, in order. */
  registryMaps: Record<string, string[]>;
  skipDefaultRegistryFallback: boolean;
  credentialHelpers: string[];
  azureContainerRegistryConfig: string;
  // Logging
  verbosity: LogLevelName;
  logFormat: LogFormatName;
  logTimestamp: boolean;
  // kiln
  isolation: IsolationMode;
  report: string;
  explainCache: boolean;
  /** Build arg names marked secret (`--secret-build-arg`). */
  secretBuildArgs: string[];
  strict: boolean;
  layerStore: string;
  layerStoreMaxSize: string;
}

function oneOf<T extends string>(v: string, allowed: readonly T[]): T {
  const hit = allowed.find((a) => a === v);
  if (hit === undefined) throw new UsageError(`unexpected value ${JSON.stringify(v)}`);
  return hit;
}

function optionalOneOf<T extends string>(v: string | undefined, allowed: readonly T[]): T | undefined {
  return v === undefined ? undefined : oneOf(v, allowed);
}

/** Cross-flag checks kaniko makes before a build (cmd/executor/cmd/root.go), plus label syntax. */
function validateExecutor(o: ExecutorOptions): void {
  if (!o.noPush && o.destinations.length === 0) {
    throw new UsageError("you must provide --destination, or use --no-push");
  }
  if (o.cache && o.noPush && o.cacheRepo === "") {
    throw new UsageError("if using cache with --no-push, specify cache repo with --cache-repo");
  }
  if (o.imageNameWithDigestFile !== "" && o.destinations.length === 0) {
    throw new UsageError("--image-name-with-digest-file needs at least one --destination (-d)");
  }
  if (o.imageNameTagWithDigestFile !== "" && o.destinations.length === 0) {
    throw new UsageError("--image-name-tag-with-digest-file needs at least one --destination (-d)");
  }
  for (const l of o.labels) {
    if (!l.includes("="))
      throw new UsageError(`invalid --label ${JSON.stringify(l)}: labels must be of the form key=value`);
  }
}

function readExecutor(r: ValueReader, env: Env): ExecutorOptions {
  const o: ExecutorOptions = {
    dockerfile: r.string("dockerfile"),
    context: r.string("context"),
    contextSubPath: r.string("context-sub-path"),
    bucket: r.string("bucket"),
    git: r.git("git"),
    buildArgs: resolveBuildArgs(r.list("build-arg"), env),
    target: r.string("target"),
    customPlatform: r.string("custom-platform"),
    skipUnusedStages: r.bool("skip-unused-stages"),
    snapshotMode: oneOf(r.string("snapshot-mode"), ["full", "redo", "time"] as const),
    singleSnapshot: r.bool("single-snapshot"),
    useNewRun: r.bool("use-new-run"),
    ignoreVarRun: r.bool("ignore-var-run"),
    ignorePaths: r.list("ignore-path"),
    cleanup: r.bool("cleanup"),
    force: r.bool("force"),
    forceBuildMetadata: r.bool("force-build-metadata"),
    kanikoDir: r.string("kaniko-dir"),
    imageFsExtractRetry: r.number("image-fs-extract-retry"),
    imageDownloadRetry: r.number("image-download-retry"),
    secrets: r.list("secret").map(parseSecretSpec),
    preserveContext: r.bool("preserve-context"),
    preCleanup: r.bool("pre-cleanup"),
    materialize: r.bool("materialize"),
    dryrun: r.bool("dryrun"),
    destinations: r.list("destination"),
    noPush: r.bool("no-push"),
    tarPath: r.string("tar-path"),
    ociLayoutPath: r.string("oci-layout-path"),
    digestFile: r.string("digest-file"),
    imageNameWithDigestFile: r.string("image-name-with-digest-file"),
    imageNameTagWithDigestFile: r.string("image-name-tag-with-digest-file"),
    pushRetry: r.number("push-retry"),
    pushIgnoreImmutableTagErrors: r.bool("push-ignore-immutable-tag-errors"),
    skipPushPermissionCheck: r.bool("skip-push-permission-check"),
    labels: r.list("label"),
    annotations: r.map("annotation"),
    reproducible: r.bool("reproducible"),
    compression: optionalOneOf(r.optionalString("compression"), ["gzip", "zstd"] as const),
    compressionLevel: r.number("compression-level"),
    imageFormat: optionalOneOf(r.optionalString("image-format"), ["docker", "oci"] as const),
    cache: r.bool("cache"),
    cacheRepo: r.string("cache-repo"),
    cacheDir: r.string("cache-dir"),
    cacheTtlMs: r.number("cache-ttl"),
    cacheCopyLayers: r.bool("cache-copy-layers"),
    cacheRunLayers: r.bool("cache-run-layers"),
    compressedCaching: r.bool("compressed-caching"),
    noPushCache: r.bool("no-push-cache"),
    insecure: r.bool("insecure"),
    skipTlsVerify: r.bool("skip-tls-verify"),
    insecurePull: r.bool("insecure-pull"),
    skipTlsVerifyPull: r.bool("skip-tls-verify-pull"),
    insecureRegistries: r.list("insecure-registry"),
    skipTlsVerifyRegistries: r.list("skip-tls-verify-registry"),
    registryCertificates: r.map("registry-certificate"),
    registryClientCerts: r.map("registry-client-cert"),
    registryMirrors: r.list("registry-mirror"),
    registryMaps: r.multiMap("registry-map"),
    skipDefaultRegistryFallback: r.bool("skip-default-registry-fallback"),
    credentialHelpers: r.list("credential-helpers"),
    azureContainerRegistryConfig: r.string("azure-container-registry-config"),
    verbosity: oneOf(r.string("verbosity"), ["trace", "debug", "info", "warn", "error", "fatal", "panic"] as const),
    logFormat: oneOf(r.string("log-format"), ["color", "text", "json"] as const),
    logTimestamp: r.bool("log-timestamp"),
    isolation: oneOf(r.string("isolation"), ["auto", "in-place", "chroot", "userns"] as const),
    report: r.string("report"),
    explainCache: r.bool("explain-cache"),
    secretBuildArgs: r.list("secret-build-arg"),
    strict: r.bool("strict"),
    layerStore: r.string("layer-store"),
    layerStoreMaxSize: r.string("layer-store-max-size"),
  };
  r.assertAllRead();
  return o;
}

/**
 * Parses `executor` / `kiln build` arguments (without the subcommand word) with kaniko's flag
 * surface and pflag semantics, applies the KANIKO_* env fallbacks from `env`, runs kaniko's
 * cross-flag checks and rejects flags kiln does not implement yet. Throws UsageError (exit 2).
 */
export function parseExecutorArgs(
  argv: readonly string[],
  env: Env,
  opts: ParseOptions = {},
): ParseResult<ExecutorOptions> {
  return parseCommand("executor", EXECUTOR_FLAGS, argv, env, opts, readExecutor, validateExecutor);
}
