import type { ParseOptions, ParseResult } from "./parse-result.js";
import type { Env } from "./resolve.js";
import type { LogFormatName, LogLevelName } from "./executor-options.js";
import { WARMER_FLAGS } from "./warmer-flags.js";
import { parseCommand } from "./parse-command.js";
import { resolveBuildArgs, ValueReader } from "./resolve.js";
import { UsageError } from "./usage-error.js";

/** Typed, validated options of `warmer` / `kiln warm`: one camelCase field per flag. */
export interface WarmerOptions {
  images: string[];
  dockerfile: string;
  buildArgs: string[];
  cacheDir: string;
  force: boolean;
  cacheTtlMs: number;
  /** "" means the host platform. */
  customPlatform: string;
  insecurePull: boolean;
  skipTlsVerifyPull: boolean;
  insecureRegistries: string[];
  skipTlsVerifyRegistries: string[];
  registryCertificates: Record<string, string>;
  registryClientCerts: Record<string, string>;
  registryMirrors: string[];
  registryMaps: Record<string, string[]>;
  skipDefaultRegistryFallback: boolean;
  verbosity: LogLevelName;
  logFormat: LogFormatName;
  logTimestamp: boolean;
}

const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "panic"] as const;
const FORMATS = ["color", "text", "json"] as const;

function pick<T extends string>(v: string, allowed: readonly T[]): T {
  const hit = allowed.find((a) => a === v);
  if (hit === undefined) throw new UsageError(`unexpected value ${JSON.stringify(v)}`);
  return hit;
}

function readWarmer(r: ValueReader, env: Env): WarmerOptions {
  const o: WarmerOptions = {
    images: r.list("image"),
    dockerfile: r.string("dockerfile"),
    buildArgs: resolveBuildArgs(r.list("build-arg"), env),
    cacheDir: r.string("cache-dir"),
    force: r.bool("force"),
    cacheTtlMs: r.number("cache-ttl"),
    customPlatform: r.string("customPlatform"),
    insecurePull: r.bool("insecure-pull"),
    skipTlsVerifyPull: r.bool("skip-tls-verify-pull"),
    insecureRegistries: r.list("insecure-registry"),
    skipTlsVerifyRegistries: r.list("skip-tls-verify-registry"),
    registryCertificates: r.map("registry-certificate"),
    registryClientCerts: r.map("registry-client-cert"),
    registryMirrors: r.list("registry-mirror"),
    registryMaps: r.multiMap("registry-map"),
    skipDefaultRegistryFallback: r.bool("skip-default-registry-fallback"),
    verbosity: pick(r.string("verbosity"), LEVELS),
    logFormat: pick(r.string("log-format"), FORMATS),
    logTimestamp: r.bool("log-timestamp"),
  };
  r.assertAllRead();
  return o;
}

/**
 * Parses `warmer` / `kiln warm` arguments with kaniko's warmer flag table (its own short flags:
 * -i image, -c cache-dir, -d dockerfile, -f force), applies KANIKO_REGISTRY_MAP from `env`,
 * requires an image or a Dockerfile, and rejects unimplemented flags. Throws UsageError (exit 2).
 */
export function parseWarmerArgs(
  argv: readonly string[],
  env: Env,
  opts: ParseOptions = {},
): ParseResult<WarmerOptions> {
  return parseCommand("warmer", WARMER_FLAGS, argv, env, opts, readWarmer, (options) => {
    if (options.images.length === 0 && options.dockerfile === "") {
      throw new UsageError(
        "you must select at least one image to cache (--image/-i) or a Dockerfile to parse (--dockerfile/-d)",
      );
    }
  });
}
