import { findStage, type Stage } from "../dockerfile/index.js";

/**
 * The earlier stage (before index `before`) that `ref` names, as the build resolves a FROM, `--from`
 * or `RUN --mount from=` reference: the expanded reference first, then the literal one.
 */
export function earlierStage(
  all: readonly Stage[],
  before: number,
  ref: string,
  expandFrom: (s: string) => string,
): Stage | undefined {
  const earlier = all.slice(0, before);
  return findStage(earlier, expandFrom(ref)) ?? findStage(earlier, ref);
}

/**
 * How often each stage is used by the `stages` being built: as a FROM base, a `COPY --from` source
 * or a `RUN --mount from=` source (refs expanded with `expandFrom`, as the build resolves them).
 * A stage used exactly once, as a FROM base, can hand its root over to that stage.
 */
export function stageUses(
  stages: readonly Stage[],
  all: Stage[],
  expandFrom: (s: string) => string,
): Map<number, { total: number; asBase: number }> {
  const uses = new Map<number, { total: number; asBase: number }>();
  const count = (ref: string, user: Stage, asBase: boolean): void => {
    const dep = earlierStage(all, user.index, ref, expandFrom);
    if (!dep) return;
    const u = uses.get(dep.index) ?? { total: 0, asBase: 0 };
    u.total++;
    if (asBase) u.asBase++;
    uses.set(dep.index, u);
  };
  for (const s of stages) {
    if (s.from.image.toLowerCase() !== "scratch") count(s.from.image, s, true);
    for (const instr of s.instructions) {
      if (instr.kind === "copy" && instr.from !== undefined) count(instr.from, s, false);
      if (instr.kind === "run") for (const m of instr.mounts) if (m.from !== undefined) count(m.from, s, false);
    }
  }
  return uses;
}

/**
 * The built `stages` whose layers nobody reads: neither in `outputStages` (the target and its FROM
 * ancestors) nor a FROM base of another built stage, so later stages read only their root (COPY
 * --from, RUN --mount from=). Empty when the Dockerfile has an ONBUILD instruction: a trigger can
 * name a stage that is then built late, FROM one of these.
 */
export function layersUnreadStages(
  stages: readonly Stage[],
  all: readonly Stage[],
  uses: ReadonlyMap<number, { total: number; asBase: number }>,
  outputStages: ReadonlySet<number>,
): Set<number> {
  const unread = new Set<number>();
  if (all.some((s) => s.instructions.some((i) => i.kind === "onbuild"))) return unread;
  for (const s of stages) {
    if (!outputStages.has(s.index) && (uses.get(s.index)?.asBase ?? 0) === 0) unread.add(s.index);
  }
  return unread;
}
