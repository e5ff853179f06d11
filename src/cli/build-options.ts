import { existsSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { freezeOptions, type BuildOptions } from "../build/index.js";
import { UsageError, type ExecutorOptions } from "./flags/index.js";
import { resolveContext, resolveDockerfile } from "./context-options.js";
import { parsePlatform } from "./platform.js";
import { parseSize } from "../fs/index.js";
import { MAX_COMPRESSION_LEVEL } from "../image/index.js";
import { MIN_SECRET_LENGTH } from "../common/secret-material.js";
import { parseCredentialHelpers, parseReference } from "../registry/index.js";

export { resolveContext, resolveDockerfile } from "./context-options.js";

/** `--credential-helpers` → `RegistryAccess.credentialHelpers` (absent when the flag is not given). */
function credentialHelpersOption(values: readonly string[]): Pick<BuildOptions["registry"], "credentialHelpers"> {
  const enabled = parseCredentialHelpers(values);
  return enabled !== undefined ? { credentialHelpers: enabled } : {};
}

function parseLabels(labels: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of labels) {
    const i = l.indexOf("=");
    if (i <= 0) throw new UsageError(`invalid --label "${l}": expected key=value`);
    out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

function parseBuildArgs(args: readonly string[]): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const a of args) {
    const i = a.indexOf("=");
    if (i < 0) out[a] = undefined;
    else out[a.slice(0, i)] = a.slice(i + 1);
  }
  return out;
}

/**
 * The build args marked secret (`--secret-build-arg NAME`) with their values: from `--build-arg NAME=VALUE`
 * or `--build-arg NAME`, else from the environment variable NAME. Throws UsageError for a name without a
 * value or a value shorter than 4 characters (an empty value is allowed: there is nothing to hide).
 */
export function resolveSecretBuildArgs(
  o: Pick<ExecutorOptions, "buildArgs" | "secretBuildArgs">,
  env: Record<string, string | undefined>,
): Map<string, string> {
  const given = parseBuildArgs(o.buildArgs);
  const out = new Map<string, string>();
  for (const name of o.secretBuildArgs) {
    if (name === "" || name.includes("=")) {
      throw new UsageError(
        `invalid --secret-build-arg "${name.split("=")[0] ?? ""}${name.includes("=") ? "=…" : ""}": expected a build arg name; ` +
          "set the value in the environment variable of that name, never on the command line",
      );
    }
    const value = Object.prototype.hasOwnProperty.call(given, name) ? given[name] : env[name];
    if (value === undefined) {
      throw new UsageError(
        // Not `--build-arg NAME=VALUE`: a command line is readable by every process (/proc/PID/cmdline).
        `--secret-build-arg ${name}: no value; set the environment variable ${name} (a value on the command line ` +
          "is visible to other processes)",
      );
    }
    if (value.length > 0 && value.length < MIN_SECRET_LENGTH) {
      throw new UsageError(
        `--secret-build-arg ${name}: the value is shorter than ${MIN_SECRET_LENGTH} characters, too short to be redacted reliably`,
      );
    }
    out.set(name, value);
  }
  return out;
}

/** Values of the secret build args for the log redactor (never throws; bad flags are reported later). */
export function secretBuildArgSecrets(
  o: Pick<ExecutorOptions, "buildArgs" | "secretBuildArgs">,
  env: Record<string, string | undefined>,
): string[] {
  const given = parseBuildArgs(o.buildArgs);
  const out: string[] = [];
  for (const name of o.secretBuildArgs) {
    const value = Object.prototype.hasOwnProperty.call(given, name) ? given[name] : env[name];
    if (value !== undefined && value.length >= MIN_SECRET_LENGTH) out.push(value);
  }
  return out;
}

/**
 * kiln's state directory: KANIKO_DIR, else --kaniko-dir (the variable wins, as in kaniko; empty counts as
 * unset), else /kaniko when it is a directory, else a per-user temp dir (`$TMPDIR/kiln-<uid>`).
 */
export function stateDir(o: ExecutorOptions, env: Record<string, string | undefined>): string {
  const explicit = env.KANIKO_DIR || o.kanikoDir;
  if (explicit && explicit !== "/kaniko") return path.resolve(explicit);
  if (existsSync("/kaniko") && statSync("/kaniko").isDirectory()) return "/kaniko";
  return path.join(os.tmpdir(), `kiln-${process.getuid?.() ?? 0}`);
}

/** `--layer-store-max-size` in bytes. */
/**
 * `--compression-level`: 0 or less means the compression's default; above its highest level (gzip 9, zstd
 * 22) is a usage error, found before the build instead of when the first layer is compressed.
 */
function compressionLevel(compression: "gzip" | "zstd", level: number): number | undefined {
  if (level <= 0) return undefined;
  const max = MAX_COMPRESSION_LEVEL[compression];
  if (level > max) {
    throw new UsageError(`invalid --compression-level=${level}: ${compression} levels go from 1 to ${max}`);
  }
  return level;
}

function storeSize(text: string): number {
  try {
    return parseSize(text);
  } catch (e) {
    throw new UsageError(`invalid --layer-store-max-size "${text}": ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * `--destination` and a registry `--cache-repo` must be image references: a bad one is a usage error (exit 2)
 * naming the flag, found before anything is pulled.
 */
function checkReferences(o: ExecutorOptions): void {
  const check = (flag: string, value: string): void => {
    try {
      parseReference(value);
    } catch (e) {
      throw new UsageError(`invalid ${flag} "${value}": ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  for (const d of o.destinations) check("--destination", d);
  const repo = o.cacheRepo;
  // Parsed as the cache store parses it (a tag or digest given with it is allowed and not used).
  if (o.cache && repo !== "" && !repo.startsWith("oci:") && !repo.startsWith("dir:")) check("--cache-repo", repo);
}

/** Maps parsed executor flags onto the library's build options (validated, frozen). */
export function toBuildOptions(
  o: ExecutorOptions,
  env: Record<string, string | undefined>,
  cwd: string,
): Readonly<BuildOptions> {
  checkReferences(o);
  const contextDir = resolveContext(o.context, cwd);
  const dockerfilePath = resolveDockerfile(o.dockerfile, contextDir, cwd);
  // BuildKit takes SOURCE_DATE_EPOCH as a build arg; kaniko users set it in the environment.
  const sde = parseBuildArgs(o.buildArgs).SOURCE_DATE_EPOCH ?? env.SOURCE_DATE_EPOCH;
  let epoch: number | undefined;
  if (o.reproducible) epoch = 0;
  if (sde !== undefined && sde !== "") {
    if (!/^\d+$/.test(sde)) throw new UsageError(`invalid SOURCE_DATE_EPOCH "${sde}": expected Unix seconds`);
    epoch = Number(sde);
  }
  const registryMap: { from: string; to: string[] }[] = [];
  for (const [from, to] of Object.entries(o.registryMaps)) registryMap.push({ from, to });
  if (o.registryMirrors.length > 0) registryMap.push({ from: "index.docker.io", to: [...o.registryMirrors] });
  return freezeOptions({
    dockerfilePath,
    dockerfileName: path.basename(dockerfilePath),
    contextDir,
    destinations: [...o.destinations],
    buildArgs: { ...parseBuildArgs(o.buildArgs), ...Object.fromEntries(resolveSecretBuildArgs(o, env)) },
    secretBuildArgs: [...o.secretBuildArgs],
    target: o.target || undefined,
    noPush: o.noPush,
    tarPath: o.tarPath || undefined,
    ociLayoutPath: o.ociLayoutPath || undefined,
    digestFile: o.digestFile || undefined,
    imageNameWithDigestFile: o.imageNameWithDigestFile || undefined,
    imageNameTagWithDigestFile: o.imageNameTagWithDigestFile || undefined,
    builderOutput: env.BUILDER_OUTPUT || undefined,
    labels: parseLabels(o.labels),
    annotations: { ...o.annotations },
    platform: parsePlatform(o.customPlatform),
    isolation: o.isolation,
    stateDir: stateDir(o, env),
    ignorePaths: [...o.ignorePaths],
    ignoreVarRun: o.ignoreVarRun,
    epoch,
    reproducible: o.reproducible,
    compression: o.compression ?? "gzip",
    compressionLevel: compressionLevel(o.compression ?? "gzip", o.compressionLevel),
    singleSnapshot: o.singleSnapshot,
    skipPushPermissionCheck: o.skipPushPermissionCheck,
    registry: {
      insecurePush: o.insecure,
      insecurePull: o.insecurePull,
      insecureRegistries: [...o.insecureRegistries],
      skipTlsVerify: o.skipTlsVerify,
      skipTlsVerifyRegistries: [...o.skipTlsVerifyRegistries],
      registryCertificates: { ...o.registryCertificates },
      registryClientCerts: { ...o.registryClientCerts },
      registryMap,
      skipDefaultRegistryFallback: o.skipDefaultRegistryFallback,
      pushRetry: o.pushRetry,
      ...credentialHelpersOption(o.credentialHelpers),
      ...(o.azureContainerRegistryConfig ? { azureContainerRegistryConfig: o.azureContainerRegistryConfig } : {}),
    },
    snapshotMode: o.snapshotMode,
    pushIgnoreImmutableTagErrors: o.pushIgnoreImmutableTagErrors,
    disableOverlay: env.KILN_SNAPSHOTTER === "walk",
    // Benchmark switches: every blob pushed after the build, as before session 14 (bench/push-latency.ts);
    // base blobs downloaded again for the outputs, as before session 15 (bench/base-link.ts).
    ...(env.KILN_BENCH_NO_PUSH_AHEAD === "1" ? { pushAhead: false } : {}),
    ...(env.KILN_BENCH_NO_KEPT_BASES === "1" ? { keepBaseCopies: false } : {}),
    env: { ...env },
    cache: o.cache
      ? {
          repo: o.cacheRepo,
          baseDir: path.resolve(cwd, o.cacheDir),
          ttlMs: o.cacheTtlMs,
          runLayers: o.cacheRunLayers,
          copyLayers: o.cacheCopyLayers,
          noPush: o.noPushCache,
          explain: o.explainCache,
          ...(env.KILN_BENCH_KANIKO_CACHE_PROBING === "1" ? { stopAtFirstMiss: true } : {}),
        }
      : undefined,
    secrets: o.secrets.map((s) => ({ ...s })),
    cacheMountsDir:
      o.cacheDir && o.cacheDir !== "/cache" ? path.join(path.resolve(cwd, o.cacheDir), "cache-mounts") : undefined,
    force: o.force,
    cleanup: o.cleanup,
    imageDownloadRetry: o.imageDownloadRetry,
    imageFsExtractRetry: o.imageFsExtractRetry,
    layerStore: o.layerStore
      ? { dir: path.resolve(cwd, o.layerStore), maxBytes: storeSize(o.layerStoreMaxSize) }
      : undefined,
    forceBuildMetadata: o.forceBuildMetadata,
    imageFormat: o.imageFormat,
    preCleanup: o.preCleanup,
    preserveContext: o.preserveContext,
    materialize: o.materialize,
    dryRun: o.dryrun,
    strict: o.strict,
  });
}
