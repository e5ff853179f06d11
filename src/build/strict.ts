import { KilnError } from "../common/errors.js";
import {
  expandHeredoc,
  parseCheckDirective,
  type EnvLookup,
  type Instruction,
  type Warning,
} from "../dockerfile/index.js";
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
  /** `RUN --security=insecure`: every RUN gets the same privileges. */
  "RUN_SECURITY_IGNORED",
  /** `RUN --device=…` (CDI devices): not provided. */
  "RUN_DEVICE_IGNORED",
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

/**
 * Whether the Dockerfile's `# check=skip=…` directive turns off the BuildKit check `rule` (e.g.
 * `UndefinedVar`): `--strict` then does not enforce it either.
 */
export function checkSkipped(directives: Readonly<Record<string, string>>, rule: string): boolean {
  const { skip } = parseCheckDirective(directives["check"]);
  return skip === "all" || skip.some((s) => s.toLowerCase() === rule.toLowerCase());
}

/** Variables BuildKit's UndefinedVar check never reports (its SBOM scan switches, read by the frontend itself). */
const NON_ENV_ARGS: ReadonlySet<string> = new Set(["BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"]);

/**
 * `--strict`, BuildKit's UndefinedVar check: throws KilnError STRICT naming every variable `instr` used
 * that the stage does not define. `unmatched` is what expanding the instruction left unset (so the
 * instructions and fields are exactly those kiln expands: COPY/ADD sources, dest, --chown, --chmod,
 * --checksum; ENV, ARG, LABEL, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL, RUN --mount options — not the
 * commands of RUN/CMD/ENTRYPOINT/HEALTHCHECK, which the shell expands); COPY/ADD heredoc bodies with an
 * unquoted marker are checked too. Defined means an ENV of the stage (the base image's included) or an
 * ARG declared in scope, with or without a value (`declared`). As in BuildKit, the forms with a word —
 * `${VAR:-default}`, `${VAR:+alt}`, `${VAR#pattern}` … — count as uses: an undeclared VAR fails there too
 * (`ARG VAR` without a value declares it).
 */
export function assertVarsDefined(
  instr: Instruction,
  unmatched: readonly string[],
  env: EnvLookup,
  escape: "\\" | "`",
  declared: (name: string) => boolean,
): void {
  const names = new Set(unmatched);
  if (instr.kind === "copy" || instr.kind === "add") {
    for (const doc of instr.heredocs) for (const u of expandHeredoc(doc, env, escape).unmatched) names.add(u);
  }
  const missing = [...names].filter((n) => !declared(n) && !NON_ENV_ARGS.has(n));
  if (missing.length === 0) return;
  const vars = missing.map((n) => `'$${n}'`).join(", ");
  throw new KilnError(
    "STRICT",
    `usage of undefined variable${missing.length > 1 ? "s" : ""} ${vars}: declare ${missing.length > 1 ? "them" : "it"} with ARG or ENV first [UNDEFINED_VAR] ${HINT}`,
  );
}

/**
 * `--strict`, BuildKit's UndefinedArgInFrom check: the variables a FROM line used (`unmatched` of its
 * image and `--platform` expansion) must be global ARGs (declared before the first FROM, with or without
 * a value) or the predefined platform args. Returns one `Dockerfile:LINE: …` violation per variable.
 */
export function undefinedFromArgs(
  unmatched: readonly string[],
  declared: (name: string) => boolean,
  file: string,
  line: number,
): string[] {
  return [...new Set(unmatched)]
    .filter((n) => !declared(n) && !NON_ENV_ARGS.has(n))
    .map(
      (n) =>
        `${file}:${line}: FROM argument '${n}' is not declared (declare it with ARG before the first FROM) [UNDEFINED_ARG_IN_FROM]`,
    );
}
