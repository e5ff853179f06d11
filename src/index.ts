/**
 * kiln as a library: `import { build } from "kiln"`. The same build the CLI runs, with typed
 * options and a stream of typed events; the library never prints.
 */
import type { BuildOptions, Reporter } from "./build/index.js";
import { toBuildOptions } from "./cli/build-options.js";
import { parseExecutorArgs } from "./cli/flags/index.js";
import { registryClientOptions } from "./cli/registry-options.js";
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

/**
 * Build options from kaniko executor flags (`["--context", ".", "--destination", "reg/app:1"]`),
 * with exactly the CLI's parsing, defaults and validation. Throws UsageError/KilnError on bad flags.
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
