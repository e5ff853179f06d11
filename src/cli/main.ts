import { build } from "../build/index.js";
import { KilnError } from "../common/errors.js";
import { RegistryClient } from "../registry/index.js";
import { createRunner, probeIsolation } from "../run/index.js";
import { toBuildOptions } from "./build-options.js";
import { ExitCode, errorDetails, errorLine, exitCodeFor } from "./exit-codes.js";
import { parseExecutorArgs, renderHelp, UsageError, type ExecutorOptions } from "./flags/index.js";
import { registryClientOptions } from "./registry-options.js";
import { createLogger, redactor, type Logger } from "./render/index.js";
import { createReporter } from "./reporter.js";
import { KILN_VERSION } from "./version.js";

type Invocation = "kiln" | "executor" | "warmer";

/**
 * The command-line program: the only place that reads process.argv/env, prints, handles signals
 * and sets the exit code. `kiln build …` and `executor …` are the same command.
 */
export async function main(invokedAs: Invocation): Promise<void> {
  const argv = process.argv.slice(2);
  let command: "build" | "warm" | "version" | "help";
  let rest = argv;
  if (invokedAs === "kiln") {
    const first = argv[0];
    if (first === undefined || first === "help" || first === "--help" || first === "-h") command = "help";
    else if (first === "build" || first === "warm" || first === "version") {
      command = first;
      rest = argv.slice(1);
    } else {
      process.stderr.write(`kiln: unknown command "${first}" (try: kiln build, kiln warm, kiln version)\n`);
      process.exitCode = ExitCode.usage;
      return;
    }
  } else if (invokedAs === "warmer") {
    command = "warm";
  } else {
    command = argv[0] === "version" ? "version" : "build";
    if (command === "version") rest = argv.slice(1);
  }
  if (command === "help") {
    process.stdout.write(renderHelp("kiln"));
    return;
  }
  if (command === "version") {
    process.stdout.write(`Kaniko version :  kiln-${KILN_VERSION}\nkiln version ${KILN_VERSION}\n`);
    return;
  }
  if (command === "warm") {
    process.stderr.write("kiln: the warmer is not implemented yet\n");
    process.exitCode = ExitCode.usage;
    return;
  }
  process.exitCode = await runBuild(rest, invokedAs === "executor" ? "executor" : "build");
}

async function runBuild(argv: string[], helpTopic: "executor" | "build"): Promise<number> {
  const env = process.env as Record<string, string | undefined>;
  let options: ExecutorOptions;
  let warnings: string[];
  try {
    const parsed = parseExecutorArgs(argv, env);
    if (parsed.help) {
      process.stdout.write(renderHelp(helpTopic));
      return ExitCode.ok;
    }
    options = parsed.options;
    warnings = parsed.warnings;
  } catch (e) {
    process.stderr.write(`${e instanceof UsageError || e instanceof KilnError ? e.message : String(e)}\n`);
    return ExitCode.usage;
  }
  const secrets = collectSecrets(env);
  const logger: Logger = createLogger({
    format: options.logFormat,
    level: options.verbosity,
    timestamps: options.logTimestamp,
    out: process.stderr,
    isTTY: process.stderr.isTTY === true,
    noColor: env.NO_COLOR !== undefined && env.NO_COLOR !== "",
    start: new Date(),
  });
  const redact = redactor(secrets);
  for (const w of warnings) logger.log({ level: "warn", message: redact(w), time: new Date() });
  const report = createReporter(logger, redact, process.stdout);

  const controller = new AbortController();
  let interruptedBy: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    interruptedBy = sig;
    controller.abort(new KilnError("INTERRUPTED", `interrupted by ${sig}`));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  let registry: RegistryClient | undefined;
  try {
    const opts = toBuildOptions(options, env, process.cwd());
    registry = new RegistryClient(registryClientOptions(opts, env, report));
    const result = await build(
      opts,
      {
        registry,
        runner: async () => {
          const probe = await probeIsolation();
          const runner = createRunner(opts.isolation, probe);
          report({
            kind: "isolation",
            isolation: runner.isolation,
            reason: opts.isolation === "auto" ? "auto-detected" : "--isolation",
          });
          return runner;
        },
        report,
        now: () => new Date(),
      },
      controller.signal,
    );
    logger.log({ level: "info", message: `Built image ${result.digest}`, time: new Date() });
    return ExitCode.ok;
  } catch (e) {
    if (interruptedBy) {
      logger.log({ level: "error", message: `build interrupted by ${interruptedBy}`, time: new Date() });
      return interruptedBy === "SIGINT" ? ExitCode.interrupted : ExitCode.terminated;
    }
    logger.log({ level: "error", message: redact(errorLine(e)), time: new Date() });
    if (logger.enabled("debug"))
      for (const d of errorDetails(e)) logger.log({ level: "debug", message: redact(d), time: new Date() });
    return exitCodeFor(e);
  } finally {
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    await registry?.close();
  }
}

/** Values that must never be printed: registry passwords and tokens passed through the environment. */
function collectSecrets(env: Record<string, string | undefined>): string[] {
  const keys = [
    "CI_REGISTRY_PASSWORD",
    "GIT_PASSWORD",
    "GIT_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_CLIENT_SECRET",
  ];
  return keys.map((k) => env[k]).filter((v): v is string => typeof v === "string" && v.length >= 4);
}
