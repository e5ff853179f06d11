import { setMaxListeners } from "node:events";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { build, type Reporter } from "../build/index.js";
import { stateCacheDir } from "../build/options.js";
import { KilnError } from "../common/errors.js";
import { readOciLayout } from "../image/index.js";
import { RegistryClient } from "../registry/index.js";
import { createRunner, probeIsolation } from "../run/index.js";
import { secretBuildArgSecrets, stateDir, toBuildOptions } from "./build-options.js";
import { detachedDiscard } from "./discard-dir.js";
import { prepareContext } from "./context-options.js";
import { ExitCode, errorDetails, errorLine, exitCodeFor } from "./exit-codes.js";
import { parseExecutorArgs, renderHelp, UsageError, type ExecutorOptions, type SecretSpec } from "./flags/index.js";
import { registryClientOptions } from "./registry-options.js";
import { createLogger, envSecrets, redactor, type Logger } from "./render/index.js";
import { createProgress, progressIsLive } from "./progress.js";
import { createReportCollector, writeReport, type BuildEnd, type LayerSource } from "./report/index.js";
import { createReporter } from "./reporter.js";
import { KILN_VERSION } from "./version.js";
import { runWarm } from "./warm-command.js";

type Invocation = "kiln" | "executor" | "warmer";

/**
 * The command-line program: the only place that reads process.argv/env, prints, handles signals
 * and sets the exit code. `kiln build …` and `executor …` are the same command.
 */
export async function main(invokedAs: Invocation): Promise<void> {
  // The AWS SDK (ECR, ECR Public, S3 contexts) prints a multi-line notice into the build log on Node
  // versions it plans to drop; kiln supports them, so the notice is noise for kiln's users.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
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
    process.exitCode = await runWarm(rest, process.env as Record<string, string | undefined>, process.cwd());
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
  // Secret build args and the credentials in the environment are tokens: their parts are masked too (a
  // Dockerfile may expand part of one, `${TOKEN#ghp_}`). `--secret` files and values are masked whole
  // (and line by line): the build never expands them, and their parts are often ordinary text.
  const redact = redactor(buildSecretValues(options.secrets, env), {
    partial: [...envSecrets(env), ...secretBuildArgSecrets(options, env)],
  });
  // Live progress only on an interactive terminal; CI logs get plain lines.
  const progress = createProgress({
    tty: progressIsLive({ isTTY: process.stderr.isTTY === true, logFormat: options.logFormat, env }),
    err: process.stderr,
    out: process.stdout,
    clock: () => performance.now(),
    line: (m, level) => logger.log({ level, message: m, time: new Date() }),
    columns: process.stderr.columns,
    redact,
  });
  const logger: Logger = createLogger({
    format: options.logFormat,
    level: options.verbosity,
    timestamps: options.logTimestamp,
    out: progress.err,
    isTTY: process.stderr.isTTY === true,
    noColor: env.NO_COLOR !== undefined && env.NO_COLOR !== "",
    start: new Date(),
    redact, // every line, also those logged here without it (the context's source …)
  });
  for (const w of warnings) logger.log({ level: "warn", message: redact(w), time: new Date() });
  const logReport = createReporter(logger, redact, progress.out);
  const collector =
    options.report !== ""
      ? createReportCollector({
          kilnVersion: KILN_VERSION,
          startedAt: new Date(),
          clock: () => performance.now(),
          cacheEnabled: options.cache,
          redact,
        })
      : undefined;
  const report: Reporter = (e) => {
    logReport(e);
    progress.reporter(e);
    collector?.reporter(e);
  };
  /** Writes --report (JSON or HTML by extension); a failure to write is logged, never fatal. */
  const finishReport = async (end: BuildEnd, ociLayoutPath?: string): Promise<void> => {
    if (!collector) return;
    try {
      const source: LayerSource | undefined = ociLayoutPath
        ? async (digest) => (await readOciLayout(ociLayoutPath)).layers.find((l) => l.digest === digest)
        : undefined;
      await writeReport(options.report, await collector.finish(end, source));
      logger.log({ level: "info", message: `Wrote build report ${options.report}`, time: new Date() });
    } catch (e) {
      logger.log({ level: "warn", message: redact(errorLine(e)), time: new Date() });
    }
  };

  const controller = new AbortController();
  // Every in-flight request and step listens on this one signal: a cached build has dozens at once,
  // which is expected and not a leak (Node warns above 10 listeners).
  setMaxListeners(0, controller.signal);
  let interruptedBy: NodeJS.Signals | undefined;
  // The first signal stops the build in order (steps get SIGTERM, then SIGKILL 2 s later). A second
  // one exits at once, through process.exit so that 'exit' listeners still kill the RUN process
  // groups started without the helper (Node's default handler would leave them running).
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interruptedBy !== undefined) {
      logger.log({ level: "error", message: `second ${sig}: exiting now`, time: new Date() });
      progress.stop();
      process.exit(interruptedBy === "SIGINT" ? ExitCode.interrupted : ExitCode.terminated);
    }
    interruptedBy = sig;
    controller.abort(new KilnError("INTERRUPTED", `interrupted by ${sig}`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  let registry: RegistryClient | undefined;
  try {
    const prepared = await prepareContext(options, env, process.cwd(), stateDir(options, env), {
      stdin: process.stdin,
      signal: controller.signal,
    });
    if (prepared.context.fetched)
      logger.log({ level: "info", message: `Using build context ${prepared.context.source}`, time: new Date() });
    const opts = toBuildOptions(prepared.options, env, process.cwd());
    registry = new RegistryClient(registryClientOptions(opts, env, report));
    const result = await build(
      opts,
      {
        registry,
        runner: async () => {
          // Probed in the state dir, where build roots (and RUN overlays) live; remembered (see
          // stateCacheDir) while nothing the answer depends on changes.
          const cacheDir = stateCacheDir(opts);
          const probe = await probeIsolation({
            scratchDir: opts.stateDir,
            ...(cacheDir !== undefined ? { cacheFile: path.join(cacheDir, "isolation-probe.json") } : {}),
          });
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
        discardDir: detachedDiscard(opts.stateDir), // not used with --cleanup (see BuildOptions.cleanup)
      },
      controller.signal,
    );
    logReport.flush();
    const done = result.plan ? "Dry run: nothing was built, written or pushed" : `Built image ${result.digest}`;
    logger.log({ level: "info", message: done, time: new Date() });
    await finishReport({ exitCode: ExitCode.ok, digest: result.digest }, opts.ociLayoutPath);
    return ExitCode.ok;
  } catch (e) {
    logReport.flush(); // RUN output held back, before the error that ends it
    if (interruptedBy) {
      logger.log({ level: "error", message: `build interrupted by ${interruptedBy}`, time: new Date() });
      const code = interruptedBy === "SIGINT" ? ExitCode.interrupted : ExitCode.terminated;
      await finishReport({ exitCode: code, error: `build interrupted by ${interruptedBy}` });
      return code;
    }
    logger.log({ level: "error", message: redact(errorLine(e)), time: new Date() });
    if (logger.enabled("debug"))
      for (const d of errorDetails(e)) logger.log({ level: "debug", message: redact(d), time: new Date() });
    await finishReport({ exitCode: exitCodeFor(e), error: redact(errorLine(e)) });
    return exitCodeFor(e);
  } finally {
    logReport.flush();
    progress.stop();
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    await registry?.close();
  }
}

/** Values of `--secret`s (file contents, env values), whole and trimmed: never printed. */
function buildSecretValues(specs: readonly SecretSpec[], env: Record<string, string | undefined>): string[] {
  const out: string[] = [];
  for (const s of specs) {
    let v: string | undefined;
    if (s.type === "env") v = env[s.env];
    else {
      try {
        v = readFileSync(s.src, "utf8");
      } catch {
        v = undefined; // reported by the RUN that mounts it
      }
    }
    if (v === undefined) continue;
    for (const x of [v, v.trim()]) if (x.length >= 4) out.push(x);
  }
  return out;
}
