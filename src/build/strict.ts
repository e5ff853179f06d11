import { KilnError } from "../common/errors.js";
import type { Warning } from "../dockerfile/index.js";
import type { Platform } from "../image/types.js";
import type { Reporter } from "./events.js";

/**
 * Warning codes that mean "kiln accepted input and ignored (part of) it", as kaniko does silently.
 * `--strict` turns each into a build error. Style lints (casing, JSON form, MAINTAINER) are not
 * leniencies and stay warnings.
 */
export const STRICT_CODES: ReadonlySet<string> = new Set([
  /** An earlier CMD, ENTRYPOINT or HEALTHCHECK of a stage is overridden by a later one. */
  "MULTIPLE_INSTRUCTIONS_DISALLOWED",
  /** `FROM --platform=` names another platform than the one kiln builds (`--custom-platform`). */
  "FROM_PLATFORM_IGNORED",
  /** A `--build-arg` no ARG consumed. */
  "UNUSED_BUILD_ARG",
  /** In place: COPY/ADD targets on the ignore list, left out. */
  "COPY_IGNORED_PATH",
  /** `--compression`/`--compression-level` that a Docker-format image cannot use. */
  "COMPRESSION_IGNORED",
  /** `--pre-cleanup`, `--preserve-context` or `--materialize` on a back-end that builds in its own directories. */
  "IN_PLACE_FLAG_IGNORED",
]);

const HINT = "(--strict: kiln refuses input it would otherwise ignore; fix it or drop --strict)";

/**
 * Wraps a reporter so that, with `strict`, a warning whose code is in {@link STRICT_CODES} fails the
 * build with KilnError STRICT at the point it is reported (a step's error then carries its
 * Dockerfile:line). Without `strict` the reporter is returned unchanged.
 */
export function strictReporter(report: Reporter, strict: boolean): Reporter {
  if (!strict) return report;
  return (e) => {
    if (e.kind === "warning" && STRICT_CODES.has(e.code)) {
      throw new KilnError("STRICT", `${e.message} [${e.code}] ${HINT}`);
    }
    report(e);
  };
}

/**
 * Dockerfile warnings that are leniencies, as `Dockerfile:LINE: message [CODE]` lines.
 */
export function strictViolations(warnings: readonly Warning[], file: string): string[] {
  return warnings
    .filter((w) => STRICT_CODES.has(w.code))
    .map((w) => `${file}${w.range ? `:${w.range.start}` : ""}: ${w.message} [${w.code}]`);
}

/** Throws KilnError STRICT listing every violation (one line each); no-op for none. */
export function assertStrict(violations: readonly string[]): void {
  if (violations.length === 0) return;
  throw new KilnError("STRICT", `${violations.join("; ")} ${HINT}`);
}

/**
 * The FROM_PLATFORM_IGNORED warning for a `FROM --platform=<value>` (already expanded) when it names
 * another platform than `target` — kiln, like kaniko, builds every stage for `--custom-platform`.
 */
export function fromPlatformWarning(value: string, target: Platform, line: number): Warning | undefined {
  const [os = "", arch = "", variant] = value.toLowerCase().split("/");
  const same =
    os === target.os &&
    arch === target.architecture &&
    (variant === undefined || target.variant === undefined || variant === target.variant);
  if (same) return undefined;
  const want = [target.os, target.architecture, target.variant].filter(Boolean).join("/");
  return {
    code: "FROM_PLATFORM_IGNORED",
    message: `FROM --platform=${value} is ignored: kiln builds every stage for ${want} (--custom-platform)`,
    range: { start: line, end: line },
  };
}
