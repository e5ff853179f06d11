import type { BuildEvent, Reporter } from "../build/index.js";
import type { Level, Logger } from "./render/index.js";

/**
 * Renders build events as kaniko-style log lines. RUN output is streamed line by line as it
 * arrives (stdout/stderr of the step go to the log at INFO, like kaniko prints them); phases and
 * debug details appear at --verbosity=debug. `redact` removes secret values from every line.
 */
export function createReporter(
  logger: Logger,
  redact: (s: string) => string,
  rawOutput: NodeJS.WritableStream,
): Reporter {
  const log = (level: Level, message: string): void => {
    if (logger.enabled(level)) logger.log({ level, message: redact(message), time: new Date() });
  };
  const instructions = new Map<string, string>();
  return (e: BuildEvent) => {
    switch (e.kind) {
      case "info":
        log("info", e.message);
        break;
      case "debug":
        log("debug", e.message);
        break;
      case "warning":
        log("warn", e.message);
        break;
      case "stage-start":
        log("info", `Building stage '${e.name ?? e.stage}' FROM ${e.base}`);
        break;
      case "base-resolved":
        log("debug", `Resolved base image ${e.ref} to ${e.digest}`);
        break;
      case "step-start":
        instructions.set(`${e.stage}/${e.step}`, e.instruction.split("\n")[0] ?? "");
        log("info", `${e.instruction.split("\n")[0]}`);
        log("debug", `step ${e.step}/${e.total} of stage ${e.stage} at ${e.location}`);
        break;
      case "step-output":
        // RUN output is the command's own bytes: passed through unformatted, like kaniko does.
        rawOutput.write(redact(e.data.toString("utf8")));
        break;
      case "step-done": {
        // kaniko's cache lines; the reason (which input changed) is kiln's addition, at debug level.
        const cmd = instructions.get(`${e.stage}/${e.step}`) ?? `step ${e.step}`;
        if (e.cache?.status === "hit") log("info", `Using caching version of cmd: ${cmd}`);
        else if (e.cache?.status === "miss") log("info", `No cached layer found for cmd ${cmd}`);
        if (e.cache && e.cache.status !== "disabled") log("debug", `cache ${e.cache.status}: ${e.cache.reason}`);
        if (e.layer)
          log("debug", `step ${e.step} produced layer ${e.layer.digest} (${e.layer.size} bytes) in ${e.ms} ms`);
        else log("debug", `step ${e.step} done in ${e.ms} ms (no layer)`);
        break;
      }
      case "phase":
        log("debug", `phase ${e.phase}: ${e.ms} ms`);
        break;
      case "image-written":
        if (e.sink !== "registry") log("info", `Wrote ${e.sink} ${e.target} (${e.digest})`);
        break;
      case "layer-created":
      case "transfer":
        // Consumed by the build report and the progress display.
        break;
      case "isolation":
        log("info", `Using isolation back-end "${e.isolation}" (${e.reason})`);
        break;
    }
  };
}
