// The typed example of docs/library.md (test/report/docs.test.ts keeps the two identical, with the
// import below spelled `from "kiln"` in the docs). It compiles with the project: `tsc` checks it.
import {
  build,
  createRunner,
  optionsFromFlags,
  probeIsolation,
  RegistryClient,
  registryOptionsFor,
  RunFailedError,
  type BuildEvent,
} from "../../src/index.js";

/** Builds ./app/Dockerfile into an OCI layout and returns the image digest. */
export async function buildApp(signal?: AbortSignal): Promise<string> {
  // Options from kaniko's flags: same parsing, defaults and validation as the CLI.
  const opts = optionsFromFlags(
    ["--context", "./app", "--no-push", "--oci-layout-path", "./out/oci", "--build-arg", "VERSION=1.2.3"],
    { ...process.env },
  );
  const onEvent = (e: BuildEvent): void => {
    if (e.kind === "step-start") console.log(`[${e.location}] ${e.instruction}`);
    else if (e.kind === "step-output") process.stdout.write(e.data);
    else if (e.kind === "step-done" && e.layer) console.log(`  layer ${e.layer.digest} (${e.layer.size} bytes)`);
    else if (e.kind === "warning") console.warn(`warning ${e.code}: ${e.message}`);
  };
  const registry = new RegistryClient(registryOptionsFor(opts, onEvent));
  try {
    const result = await build(
      opts,
      {
        registry,
        runner: async () => createRunner(opts.isolation, await probeIsolation({ scratchDir: opts.stateDir })),
        report: onEvent,
        now: () => new Date(),
      },
      signal,
    );
    return result.digest;
  } catch (e) {
    if (e instanceof RunFailedError) console.error(`RUN failed with exit code ${e.exitCode}`);
    throw e;
  } finally {
    await registry.close();
  }
}
