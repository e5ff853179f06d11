import {
  build,
  createRunner,
  optionsFromFlags,
  probeIsolation,
  RegistryClient,
  registryOptionsFor,
  type BuildEvent,
  type BuildOptions,
} from "../../src/index.js";
import type { Runner } from "../../src/run/index.js";

/** What {@link libraryBuild} returns. */
export interface LibraryBuildOutcome {
  digest: string;
  /** Every event the build reported, in order. */
  events: BuildEvent[];
  /** How often the build asked for its RUN runner (the isolation probe runs on the first call). */
  runnerCalls: number;
}

/**
 * Runs a whole build through the library API with kaniko flags (as docs/library.md shows), collecting
 * its events. `onEvent` sees each event as it happens; `runner` replaces the probed runner; `discardDir`
 * is handed to the build (see BuildDeps.discardDir; default: the build deletes its directory itself).
 */
export async function libraryBuild(
  args: string[],
  hooks: {
    onEvent?: (e: BuildEvent) => void;
    runner?: () => Promise<Runner>;
    discardDir?: (dir: string) => Promise<void>;
    /** Options no flag sets (e.g. `skeletonCopy: false`), applied over the flags' options. */
    options?: Partial<BuildOptions>;
  } = {},
): Promise<LibraryBuildOutcome> {
  const opts = { ...optionsFromFlags(args, {}), ...hooks.options };
  const events: BuildEvent[] = [];
  const report = (e: BuildEvent): void => {
    events.push(e);
    hooks.onEvent?.(e);
  };
  let runnerCalls = 0;
  const registry = new RegistryClient(registryOptionsFor(opts, report));
  try {
    const result = await build(opts, {
      registry,
      runner: async () => {
        runnerCalls++;
        if (hooks.runner) return hooks.runner();
        const r = createRunner(opts.isolation, await probeIsolation({ scratchDir: opts.stateDir }));
        report({ kind: "isolation", isolation: r.isolation, reason: "test" });
        return r;
      },
      report,
      now: () => new Date(),
      ...(hooks.discardDir ? { discardDir: hooks.discardDir } : {}),
    });
    return { digest: result.digest, events, runnerCalls };
  } finally {
    await registry.close();
  }
}
