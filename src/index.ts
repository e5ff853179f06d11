/**
 * kiln as a library: `import { build } from "kiln"`. The same build the CLI runs, with typed
 * options and a stream of typed events; the library never prints.
 */
import type { Readable } from "node:stream";
import type { BuildOptions, Reporter } from "./build/index.js";
import { stateDir, toBuildOptions } from "./cli/build-options.js";
import { prepareContext as prepareFlagsContext } from "./cli/context-options.js";
import { parseExecutorArgs } from "./cli/flags/index.js";
import { registryClientOptions } from "./cli/registry-options.js";
import type { PreparedContext } from "./context/index.js";
import type { RegistryClientOptions } from "./registry/index.js";

export { build, RunFailedError, freezeOptions } from "./build/index.js";
export type {
  BuildDeps,
  BuildEvent,
  BuildOptions,
  BuildPlan,
  BuildResult,
  CacheOutcome,
  Phase,
  PlannedStage,
  RegistryAccess,
  Reporter,
} from "./build/index.js";
export { KilnError } from "./common/errors.js";
export { RegistryClient, RegistryError, parseReference } from "./registry/index.js";
export type { Reference, RegistryClientOptions, RegistryEvent } from "./registry/index.js";
export { createRunner, probeIsolation } from "./run/index.js";
export type { Isolation, Runner } from "./run/index.js";
export { readOciLayout } from "./image/index.js";
export type { Digest, Image, Layer } from "./image/index.js";
export { createReportCollector, renderReportHtml, writeReport } from "./cli/report/index.js";
export type { BuildReport } from "./cli/report/index.js";
export type { PreparedContext } from "./context/index.js";

/**
 * Build options from kaniko executor flags (`["--context", ".", "--destination", "reg/app:1"]`),
 * with exactly the CLI's parsing, defaults and validation. Throws UsageError/KilnError on bad flags, and
 * CONTEXT_INVALID for a context or `--dockerfile` that must be downloaded first: use {@link prepareContext}.
 */
export function optionsFromFlags(
  args: readonly string[],
  env: Record<string, string | undefined> = {},
  cwd: string = process.cwd(),
): Readonly<BuildOptions> {
  return toBuildOptions(parseExecutorArgs(args, env).options, env, cwd);
}

/** Registry client options for a build (TLS, insecure registries, mirrors), as the CLI sets them up. */
export function registryOptionsFor(
  opts: Readonly<BuildOptions>,
  report: Reporter = () => undefined,
): RegistryClientOptions {
  return registryClientOptions(opts, opts.env, report);
}

/** What {@link prepareContext} gives: options ready for {@link build}, and where the context came from. */
export interface PreparedBuild {
  /** The build options, with the context and the Dockerfile as local paths. */
  options: Readonly<BuildOptions>;
  /**
   * The context: `dir` (the local directory built from), `source` (for logs: no credentials or query
   * strings) and `fetched` (downloaded or unpacked into `<stateDir>/buildcontext`).
   */
  context: PreparedContext;
}

/** Inputs of {@link prepareContext} besides the flags. */
export interface PrepareContextIo {
  /** The archive of a `tar://stdin` context (a TTY is refused). Without it, `tar://stdin` fails. */
  stdin?: Readable & { isTTY?: boolean };
  /** Cancels the download. */
  signal?: AbortSignal;
}

/**
 * The CLI's first step, then {@link optionsFromFlags}: fetches or unpacks a remote `--context` (`git://`,
 * `https://`, `s3://`, `gs://`, Azure Blob, `tar://<file>`, `tar://stdin`) into `<stateDir>/buildcontext`
 * (emptied first) and downloads an http(s) `--dockerfile` to `<stateDir>/dockerfile/Dockerfile`, with the
 * CLI's limits, credentials and proxy settings, all taken from `env`. A local context is used in place.
 */
export async function prepareContext(
  args: readonly string[],
  env: Record<string, string | undefined> = {},
  cwd: string = process.cwd(),
  io: PrepareContextIo = {},
): Promise<PreparedBuild> {
  const flags = parseExecutorArgs(args, env).options;
  const prepared = await prepareFlagsContext(flags, env, cwd, stateDir(flags, env), io);
  return { options: toBuildOptions(prepared.options, env, cwd), context: prepared.context };
}
