import { readFile } from "node:fs/promises";
import path from "node:path";
import { warmImage } from "../cache/index.js";
import { KilnError } from "../common/errors.js";
import { envFromPairs, expandWord, parseDockerfile } from "../dockerfile/index.js";
import { parseReference, RegistryClient, type RegistryClientOptions } from "../registry/index.js";
import { ExitCode, errorLine, exitCodeFor } from "./exit-codes.js";
import { parseWarmerArgs, renderHelp, UsageError, type WarmerOptions } from "./flags/index.js";
import { parsePlatform } from "./platform.js";
import { createLogger, envSecrets, redactor, type Logger } from "./render/index.js";
import { KILN_VERSION } from "./version.js";

/** Registry client settings of the warmer (pull side of kaniko's registry flags). */
export function warmerRegistryOptions(
  o: WarmerOptions,
  env: Record<string, string | undefined>,
): RegistryClientOptions {
  const registryMap: { from: string; to: string[] }[] = [];
  for (const [from, to] of Object.entries(o.registryMaps)) registryMap.push({ from, to });
  if (o.registryMirrors.length > 0) registryMap.push({ from: "index.docker.io", to: [...o.registryMirrors] });
  return {
    env,
    hostOptions(registry) {
      const ca = o.registryCertificates[registry];
      const client = o.registryClientCerts[registry];
      const [cert, key] = client ? client.split(",") : [];
      return {
        insecure: o.insecurePull || o.insecureRegistries.includes(registry),
        skipTlsVerify: o.skipTlsVerifyPull || o.skipTlsVerifyRegistries.includes(registry),
        caFiles: ca ? [ca] : [],
        ...(cert && key ? { clientCert: { cert, key } } : {}),
      };
    },
    registryMap,
    skipDefaultFallback: o.skipDefaultRegistryFallback,
    userAgent: `kiln/${KILN_VERSION}`,
  };
}

/**
 * The base images a Dockerfile names in its FROM lines (meta ARGs expanded with `--build-arg`),
 * without `scratch` and references to earlier stages — what kaniko's warmer `--dockerfile` caches.
 */
export function dockerfileBaseImages(text: string, file: string, buildArgs: readonly string[]): string[] {
  const df = parseDockerfile(text, { file });
  const given = new Map<string, string | undefined>();
  for (const a of buildArgs) {
    const i = a.indexOf("=");
    given.set(i < 0 ? a : a.slice(0, i), i < 0 ? undefined : a.slice(i + 1));
  }
  const vars = new Map<string, string>();
  for (const a of df.metaArgs) {
    for (const kv of a.args) {
      const v = given.has(kv.key)
        ? given.get(kv.key)
        : kv.value !== undefined
          ? expandWord(kv.value, envFromPairs(vars), df.escapeToken).value
          : undefined;
      if (v !== undefined) vars.set(kv.key, v);
    }
  }
  const out: string[] = [];
  const stageNames = new Set<string>();
  for (const st of df.stages) {
    const ref = expandWord(st.from.image, envFromPairs(vars), df.escapeToken).value;
    if (ref.toLowerCase() !== "scratch" && !stageNames.has(ref.toLowerCase()) && !out.includes(ref)) out.push(ref);
    if (st.name) stageNames.add(st.name.toLowerCase());
  }
  return out;
}

/** `kiln warm` / `warmer`: caches base images in --cache-dir like kaniko's warmer. Returns the exit code. */
export async function runWarm(argv: string[], env: Record<string, string | undefined>, cwd: string): Promise<number> {
  let o: WarmerOptions;
  try {
    const parsed = parseWarmerArgs(argv, env);
    if (parsed.help) {
      process.stdout.write(renderHelp("warmer"));
      return ExitCode.ok;
    }
    o = parsed.options;
    for (const w of parsed.warnings) process.stderr.write(`${w}\n`);
  } catch (e) {
    process.stderr.write(`${e instanceof UsageError || e instanceof KilnError ? e.message : String(e)}\n`);
    return ExitCode.usage;
  }
  const logger: Logger = createLogger({
    format: o.logFormat,
    level: o.verbosity,
    timestamps: o.logTimestamp,
    out: process.stderr,
    isTTY: process.stderr.isTTY === true,
    noColor: env.NO_COLOR !== undefined && env.NO_COLOR !== "",
    start: new Date(),
  });
  // As in builds: registry passwords and tokens from the environment never reach a log line.
  const redact = redactor([], { partial: envSecrets(env) });
  const info = (message: string): void => logger.log({ level: "info", message: redact(message), time: new Date() });
  const registry = new RegistryClient(warmerRegistryOptions(o, env));
  try {
    const images = [...o.images];
    if (o.dockerfile !== "") {
      const file = path.resolve(cwd, o.dockerfile);
      let text: string;
      try {
        text = await readFile(file, "utf8");
      } catch {
        throw new KilnError("DOCKERFILE_NOT_FOUND", `Dockerfile ${file}: no such file (warmer --dockerfile)`);
      }
      for (const ref of dockerfileBaseImages(text, path.basename(file), o.buildArgs))
        if (!images.includes(ref)) images.push(ref);
    }
    const platform = parsePlatform(o.customPlatform);
    const cacheDir = path.resolve(cwd, o.cacheDir);
    for (const image of images) {
      const r = await warmImage(registry, parseReference(image), { cacheDir, force: o.force, platform });
      info(
        r.status === "present"
          ? `Image already in cache: ${image} (${r.digest})`
          : `Wrote ${image} to cache ${path.join(cacheDir, r.digest)}`,
      );
    }
    return ExitCode.ok;
  } catch (e) {
    logger.log({ level: "error", message: redact(errorLine(e)), time: new Date() });
    return exitCodeFor(e);
  } finally {
    await registry.close();
  }
}
