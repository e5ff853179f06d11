import { createWriteStream, existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { KilnError } from "../common/errors.js";
import {
  DEFAULT_CONTEXT_LIMITS,
  httpGet,
  parseConnectionString,
  parseContextSpec,
  prepareContext as prepareContextDir,
  proxyEnvFrom,
  type ContextLimits,
  type PreparedContext,
} from "../context/index.js";
import { resolveInRoot } from "../fs/index.js";
import type { ExecutorOptions } from "./flags/index.js";

const SCHEME = /^([a-z0-9+.-]+):\/\//i;

/**
 * Resolves a local `--context` (a plain path or `dir://path`) to an absolute directory. Remote sources must
 * have been turned into a local directory by {@link prepareContext} first.
 */
export function resolveContext(ctx: string, cwd: string): string {
  const m = SCHEME.exec(ctx);
  if (m) {
    const scheme = (m[1] as string).toLowerCase();
    if (scheme !== "dir")
      throw new KilnError(
        "CONTEXT_INVALID",
        `kiln: context ${scheme}:// must be fetched first (prepareContext, not optionsFromFlags)`,
      );
    return path.resolve(cwd, ctx.slice(m[0].length));
  }
  return path.resolve(cwd, ctx);
}

/**
 * kaniko's Dockerfile lookup: the path as given if it exists, else relative to the context. An http(s)
 * URL must have been downloaded by {@link prepareContext} first.
 */
export function resolveDockerfile(dockerfile: string, contextDir: string, cwd: string): string {
  if (/^https?:\/\//i.test(dockerfile)) {
    throw new KilnError(
      "CONTEXT_INVALID",
      "kiln: a --dockerfile URL must be downloaded first (prepareContext, not optionsFromFlags)",
    );
  }
  const asGiven = path.resolve(cwd, dockerfile);
  if (existsSync(asGiven)) return asGiven;
  return path.resolve(contextDir, dockerfile);
}

/** Largest Dockerfile downloaded from a URL. */
const MAX_DOCKERFILE_BYTES = 16 * 1024 * 1024;

/** Context size limits from the environment (`KILN_CONTEXT_MAX_BYTES`, `_MAX_ENTRIES`, `_MAX_DEPTH`). */
function contextLimits(env: Record<string, string | undefined>): ContextLimits {
  const num = (k: string, d: number): number => {
    const v = env[k];
    if (v === undefined || v === "") return d;
    if (!/^\d+$/.test(v)) throw new KilnError("CONTEXT_INVALID", `invalid ${k}="${v}": expected a whole number`);
    return Number(v);
  };
  return {
    maxBytes: num("KILN_CONTEXT_MAX_BYTES", DEFAULT_CONTEXT_LIMITS.maxBytes),
    maxEntries: num("KILN_CONTEXT_MAX_ENTRIES", DEFAULT_CONTEXT_LIMITS.maxEntries),
    maxDepth: num("KILN_CONTEXT_MAX_DEPTH", DEFAULT_CONTEXT_LIMITS.maxDepth),
  };
}

/** What {@link prepareContext} did: the options to build with (local context/Dockerfile) and the source. */
export interface PreparedOptions {
  options: ExecutorOptions;
  context: PreparedContext;
}

/**
 * Fetches or unpacks the `--context` source into `<stateDir>/buildcontext` (kaniko's
 * `<kaniko dir>/buildcontext`) and downloads an http(s) `--dockerfile` to `<stateDir>/dockerfile/Dockerfile`.
 * Returns options whose `context`/`dockerfile` are local paths, ready for `toBuildOptions`. Reads the environment
 * kaniko reads: GIT_*, S3_ENDPOINT/S3_FORCE_PATH_STYLE (plus the AWS SDK chain), AZURE_STORAGE_ACCESS_KEY,
 * STORAGE_EMULATOR_HOST, and the optional AZURE_STORAGE_CONNECTION_STRING BlobEndpoint override; git, https,
 * gs, Azure and S3 contexts and a URL Dockerfile go through HTTP(S)_PROXY unless NO_PROXY names the host.
 */
export async function prepareContext(
  o: ExecutorOptions,
  env: Record<string, string | undefined>,
  cwd: string,
  stateDir: string,
  io: { stdin?: Readable & { isTTY?: boolean }; signal?: AbortSignal } = {},
): Promise<PreparedOptions> {
  const spec = parseContextSpec(o.context, cwd, { pullMethod: env.GIT_PULL_METHOD, bucket: o.bucket });
  const limits = contextLimits(env);
  const cs = parseConnectionString(env.AZURE_STORAGE_CONNECTION_STRING ?? "");
  const proxy = proxyEnvFrom(env);
  const context = await prepareContextDir({
    spec,
    subPath: o.contextSubPath,
    workDir: path.join(stateDir, "buildcontext"),
    git: { ...o.git },
    gitCredentials: { username: env.GIT_USERNAME, password: env.GIT_PASSWORD, token: env.GIT_TOKEN },
    s3: {
      endpoint: env.S3_ENDPOINT || undefined,
      forcePathStyle: (env.S3_FORCE_PATH_STYLE ?? "").toLowerCase() === "true",
      region: env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined,
    },
    gcs: {
      emulatorHost: env.STORAGE_EMULATOR_HOST || undefined,
      accessToken: env.GOOGLE_OAUTH_ACCESS_TOKEN || env.CLOUDSDK_AUTH_ACCESS_TOKEN || undefined,
    },
    azure: { accessKey: env.AZURE_STORAGE_ACCESS_KEY || cs.accountKey, blobEndpoint: cs.blobEndpoint },
    proxy,
    ...(io.stdin ? { stdin: io.stdin } : {}),
    limits,
    ...(io.signal ? { signal: io.signal } : {}),
  });
  let dockerfile = o.dockerfile;
  if (/^https?:\/\//i.test(dockerfile)) {
    const body = await httpGet(dockerfile, {
      maxBytes: MAX_DOCKERFILE_BYTES,
      what: "Dockerfile",
      proxy,
      ...(io.signal ? { signal: io.signal } : {}),
    });
    const dir = path.join(stateDir, "dockerfile");
    await mkdir(dir, { recursive: true });
    dockerfile = path.join(dir, "Dockerfile");
    await pipeline(body, createWriteStream(dockerfile));
  } else if (context.fetched && !existsSync(path.resolve(cwd, dockerfile))) {
    // A fetched context is untrusted: its Dockerfile may be a symlink, resolved inside the context.
    dockerfile = await resolveInRoot(context.dir, dockerfile, { followFinal: true });
  }
  return { options: { ...o, context: context.dir, dockerfile }, context };
}
