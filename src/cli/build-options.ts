import { existsSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { freezeOptions, type BuildOptions } from "../build/index.js";
import { UsageError, type ExecutorOptions } from "./flags/index.js";
import { resolveContext, resolveDockerfile } from "./context-options.js";
import { parsePlatform } from "./platform.js";

export { resolveContext, resolveDockerfile } from "./context-options.js";

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

/** kiln's state directory: --kaniko-dir/KANIKO_DIR when usable, else a per-user temp dir. */
export function stateDir(o: ExecutorOptions, env: Record<string, string | undefined>): string {
  const explicit = env.KANIKO_DIR ?? o.kanikoDir;
  if (explicit && explicit !== "/kaniko") return path.resolve(explicit);
  if (existsSync("/kaniko") && statSync("/kaniko").isDirectory()) return "/kaniko";
  return path.join(os.tmpdir(), `kiln-${process.getuid?.() ?? 0}`);
}

/** Maps parsed executor flags onto the library's build options (validated, frozen). */
export function toBuildOptions(
  o: ExecutorOptions,
  env: Record<string, string | undefined>,
  cwd: string,
): Readonly<BuildOptions> {
  const contextDir = resolveContext(o.context, cwd);
  const dockerfilePath = resolveDockerfile(o.dockerfile, contextDir, cwd);
  const sde = env.SOURCE_DATE_EPOCH;
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
    buildArgs: parseBuildArgs(o.buildArgs),
    target: o.target || undefined,
    noPush: o.noPush,
    tarPath: o.tarPath || undefined,
    ociLayoutPath: o.ociLayoutPath || undefined,
    digestFile: o.digestFile || undefined,
    imageNameWithDigestFile: o.imageNameWithDigestFile || undefined,
    imageNameTagWithDigestFile: o.imageNameTagWithDigestFile || undefined,
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
    compressionLevel: o.compressionLevel > 0 ? o.compressionLevel : undefined,
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
    },
    snapshotMode: o.snapshotMode,
    pushIgnoreImmutableTagErrors: o.pushIgnoreImmutableTagErrors,
    disableOverlay: env.KILN_SNAPSHOTTER === "walk",
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
        }
      : undefined,
    secrets: o.secrets.map((s) => ({ ...s })),
    cacheMountsDir:
      o.cacheDir && o.cacheDir !== "/cache" ? path.join(path.resolve(cwd, o.cacheDir), "cache-mounts") : undefined,
    force: o.force,
    cleanup: o.cleanup,
    imageDownloadRetry: o.imageDownloadRetry,
    imageFsExtractRetry: o.imageFsExtractRetry,
  });
}
