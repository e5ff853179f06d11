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
  return dependencyOrder(targetStage, stageLookup(stages), (s) => referencesOf(s, fromOf, expandFrom), df.file);
}

/** One stage being walked by {@link dependencyOrder}: its references and how many were handled. */
type Frame = { stage: Stage; refs: Ref[]; next: number };

/**
 * Depth-first post-order over the stages `root` uses (dependencies first, each stage once, errors
 * in the order a recursive walk meets them). Iterative with an explicit stack, so a long chain of
 * stages cannot overflow the call stack.
 */
function dependencyOrder(
  root: Stage,
  lookup: (ref: string) => Stage | undefined,
  refsOf: (s: Stage) => Ref[],
  file: string,
): Stage[] {
  const order: Stage[] = [];
  const done = new Set<number>([root.index]);
  const stack: Frame[] = [{ stage: root, refs: refsOf(root), next: 0 }];
  for (let top = stack.at(-1); top !== undefined; top = stack.at(-1)) {
    const ref = top.refs[top.next++];
    if (ref === undefined) {
      stack.pop();
      order.push(top.stage);
      continue;
    }
    const dep = lookup(ref.ref);
    if (!dep) continue;
    if (dep.index >= top.stage.index) throw orderError(ref, dep, top.stage, file);
    if (done.has(dep.index)) continue;
    done.add(dep.index);
    stack.push({ stage: dep, refs: refsOf(dep), next: 0 });
  }
  return order;
}

/** The BuildKit error for stage `s` using itself or `dep`, a stage defined after it. */
function orderError(ref: Ref, dep: Stage, s: Stage, file: string): DockerfileError {
  const what =
    dep.index === s.index
      ? `circular dependency detected on stage: ${stageLabel(s)}`
      : ref.kind === "from"
        ? `stage ${stageLabel(s)} is based on stage ${stageLabel(dep)}, which is defined after it`
        : `cannot ${ref.kind === "copy" ? "copy" : "mount"} from stage ${stageLabel(dep)}, it needs to be defined before current stage ${stageLabel(s)}`;
  return new DockerfileError(ErrorCodes.stage, what, {
    file,
    range: { start: ref.line, end: ref.line },
    hint: "a stage can only use stages defined before it; move that stage up",
  });
}

/**
 * A reference resolver over `stages` like findStage, but a numeric reference only counts when it is
 * a valid index; names win. Names are indexed once so that resolving is not a scan per reference.
 */
function stageLookup(stages: Stage[]): (ref: string) => Stage | undefined {
  const byName = new Map<string, Stage>();
  for (const s of stages) if (s.name !== undefined && !byName.has(s.name)) byName.set(s.name, s);
  return (ref) => {
    const named = byName.get(ref.toLowerCase());
    if (named) return named;
    if (/^[0-9]+$/.test(ref)) return stages[Number(ref)];
    return undefined;
  };
}

const stageLabel = (s: Stage): string =>
  s.name !== undefined ? `${JSON.stringify(s.name)} (#${s.index})` : `#${s.index}`;
