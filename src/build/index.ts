export { build, platformArgs, type BuildDeps, type BuildResult } from "./build.js";
export type { BuildEvent, CacheOutcome, Reporter, Phase } from "./events.js";
export { freezeOptions, type BuildOptions, type BuildSecret, type RegistryAccess } from "./options.js";
export { RunFailedError } from "./errors.js";
export type { BuildPlan, PlannedStage } from "./dry-run.js";
