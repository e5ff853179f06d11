import { StringDecoder } from "node:string_decoder";
import type { BuildEvent, Reporter } from "../build/index.js";
import type { Level, Logger } from "./render/index.js";

/** A reporter that may hold back the end of a RUN's output (see {@link createReporter}). */
export interface LogReporter extends Reporter {
  /** Prints the RUN output still held back (a build's end, failed or not). */
  flush(): void;
}

/**
 * Renders build events as kaniko-style log lines. RUN output is streamed as it arrives (stdout/stderr
 * of the step go to the log at INFO, like kaniko prints them); phases and debug details appear at
 * --verbosity=debug. `redact` removes secret values from every line. RUN output arrives in pieces (a
 * pipe read, up to 64 KiB) that may split a secret or a UTF-8 character: each stream of each step is
 * decoded on its own and, when `redact.split` is given, the end of a piece that could begin a secret
 * is held back until the next piece, the step's end or {@link LogReporter.flush}.
 */
export function createReporter(
  logger: Logger,
  redact: ((s: string) => string) & { split?: (text: string) => { head: string; tail: string } },
  rawOutput: NodeJS.WritableStream,
): LogReporter {
  const log = (level: Level, message: string): void => {
    if (logger.enabled(level)) logger.log({ level, message: redact(message), time: new Date() });
  };
  const instructions = new Map<string, string>();
  /** RUN output streams by `stage/step/stream`: the decoder and the raw text held back. */
  const streams = new Map<string, { decoder: StringDecoder; held: string }>();
  const output = (key: string, data: Buffer): void => {
    let s = streams.get(key);
    if (!s) {
      s = { decoder: new StringDecoder("utf8"), held: "" };
      streams.set(key, s);
    }
    const text = s.held + s.decoder.write(data);
    if (redact.split) {
      const { head, tail } = redact.split(text);
      s.held = tail;
      if (head !== "") rawOutput.write(head);
    } else if (text !== "") rawOutput.write(redact(text));
  };
  /** Prints what the streams whose key starts with `prefix` hold, and forgets them. */
  const flushStreams = (prefix: string): void => {
    for (const [key, s] of streams) {
      if (!key.startsWith(prefix)) continue;
      streams.delete(key);
      const text = s.held + s.decoder.end();
      if (text !== "") rawOutput.write(redact(text));
    }
  };
  const reporter = (e: BuildEvent): void => {
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
        output(`${e.stage}/${e.step}/${e.stream}`, e.data);
        break;
      case "step-done": {
        flushStreams(`${e.stage}/${e.step}/`);
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
  return Object.assign(reporter, { flush: () => flushStreams("") });
}
