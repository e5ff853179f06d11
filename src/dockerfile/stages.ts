import { DockerfileError, ErrorCodes } from "./errors.js";
import type { Dockerfile, Stage } from "./dockerfile.js";
import { suggest } from "./go-strings.js";

/** The automatic platform ARGs BuildKit defines in the global scope. */
export const PLATFORM_ARGS: readonly string[] = Object.freeze([
  "TARGETPLATFORM",
  "TARGETOS",
  "TARGETARCH",
  "TARGETVARIANT",
  "BUILDPLATFORM",
  "BUILDOS",
  "BUILDARCH",
  "BUILDVARIANT",
]);

/** Predefined proxy ARGs usable with --build-arg without a matching ARG (excluded from history). */
export const PROXY_ARGS: readonly string[] = Object.freeze([
  "HTTP_PROXY",
  "http_proxy",
  "HTTPS_PROXY",
  "https_proxy",
  "FTP_PROXY",
  "ftp_proxy",
  "NO_PROXY",
  "no_proxy",
  "ALL_PROXY",
  "all_proxy",
]);

/** The stage named `ref` (case-insensitive) or, when `ref` is a number, the stage with that index. */
export function findStage(stages: Stage[], ref: string): Stage | undefined {
  const lower = ref.toLowerCase();
  const byName = stages.find((s) => s.name === lower);
  if (byName) return byName;
  if (/^[0-9]+$/.test(ref)) {
    const idx = Number(ref);
    return stages[idx];
  }
  return undefined;
}

type Ref = { ref: string; line: number; kind: "from" | "copy" | "mount" };

/** The stage references of `stage`: its FROM (expanded by `fromOf`), COPY --from and RUN --mount from=. */
function referencesOf(stage: Stage, fromOf: (s: Stage) => string, expandFrom: (s: string) => string): Ref[] {
  const refs: Ref[] = [{ ref: fromOf(stage), line: stage.from.range.start, kind: "from" }];
  for (const instr of stage.instructions) {
    if (instr.kind === "copy" && instr.from !== undefined) {
      refs.push({ ref: expandFrom(instr.from), line: instr.range.start, kind: "copy" });
    }
    if (instr.kind === "run") {
      for (const m of instr.mounts) {
        if (m.from !== undefined) refs.push({ ref: expandFrom(m.from), line: instr.range.start, kind: "mount" });
      }
    }
  }
  return refs;
}

/**
 * The stages needed to build `target` (name or index; default the last stage), dependencies first.
 * A reference to a later stage (or to the stage itself) is an error, as in BuildKit; references
 * that are not stages are image references and are ignored.
 */
export function stagesNeeded(
  df: Dockerfile,
  target: string | undefined,
  fromOf: (s: Stage) => string,
  expandFrom: (s: string) => string,
): Stage[] {
  const stages = df.stages;
  let targetStage: Stage | undefined;
  if (target === undefined || target === "") {
    targetStage = stages[stages.length - 1];
  } else {
    targetStage = stages.find((s) => s.name === target.toLowerCase());
    if (!targetStage && /^[0-9]+$/.test(target)) targetStage = stages[Number(target)];
  }
  if (!targetStage) {
    const names = stages.map((s) => s.name).filter((n): n is string => n !== undefined);
    const guess = suggest(target ?? "", names);
    throw new DockerfileError(ErrorCodes.stage, `target stage ${JSON.stringify(target)} could not be found`, {
      file: df.file,
      hint: guess
        ? `did you mean ${guess}?`
        : names.length > 0
          ? `stages are: ${names.join(", ")}`
          : "the Dockerfile has no named stages",
    });
  }
  const order: Stage[] = [];
  const done = new Set<number>();
  const visit = (s: Stage): void => {
    if (done.has(s.index)) return;
    done.add(s.index);
    for (const { ref, line, kind } of referencesOf(s, fromOf, expandFrom)) {
      const dep = findStageRef(stages, ref);
      if (!dep) continue;
      if (dep.index >= s.index) {
        const what =
          dep.index === s.index
            ? `circular dependency detected on stage: ${stageLabel(s)}`
            : kind === "from"
              ? `stage ${stageLabel(s)} is based on stage ${stageLabel(dep)}, which is defined after it`
              : `cannot ${kind === "copy" ? "copy" : "mount"} from stage ${stageLabel(dep)}, it needs to be defined before current stage ${stageLabel(s)}`;
        throw new DockerfileError(ErrorCodes.stage, what, {
          file: df.file,
          range: { start: line, end: line },
          hint: "a stage can only use stages defined before it; move that stage up",
        });
      }
      visit(dep);
    }
    order.push(s);
  };

  visit(targetStage);
  return order;
}

/** Like findStage, but a numeric reference only counts when it is a valid earlier index; names win. */
function findStageRef(stages: Stage[], ref: string): Stage | undefined {
  const lower = ref.toLowerCase();
  const byName = stages.find((s) => s.name === lower);
  if (byName) return byName;
  if (/^[0-9]+$/.test(ref)) return stages[Number(ref)];
  return undefined;
}

const stageLabel = (s: Stage): string =>
  s.name !== undefined ? `${JSON.stringify(s.name)} (#${s.index})` : `#${s.index}`;
