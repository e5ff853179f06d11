import type { Stage } from "../dockerfile/index.js";
import { earlierStage } from "./stage-uses.js";
import type { Digest } from "../image/digest.js";
import type { Image } from "../image/types.js";
import type { Reporter } from "./events.js";
import type { BuildOptions } from "./options.js";

/** One stage as `--dryrun` resolved it. */
export interface PlannedStage {
  index: number;
  name?: string;
  /** The FROM reference after ARG expansion. */
  base: string;
  /** Manifest digest of the base image (undefined for scratch and FROM an earlier stage). */
  baseDigest?: Digest;
  instructions: number;
  /** RUN, COPY, ADD and WORKDIR steps: what a real build would execute. */
  fsSteps: number;
}

/** What `--dryrun` found: the stages the target needs, the images they use, the outputs it would write. */
export interface BuildPlan {
  stages: PlannedStage[];
  /** Every image the build would pull (bases, `COPY --from=<image>`, `RUN --mount from=<image>`) with its digest. */
  images: { ref: string; digest: Digest }[];
  /** Outputs a real build would write or push, e.g. `push registry/repo:tag`, `oci-layout /path`. */
  outputs: string[];
}

/** What {@link planBuild} needs from the build that calls it. */
export interface PlanInputs {
  opts: Readonly<BuildOptions>;
  /** The stages the target needs, in build order. */
  stages: readonly Stage[];
  /** Every stage of the Dockerfile (for FROM/--from references to earlier stages). */
  allStages: readonly Stage[];
  expandFrom(s: string): string;
  /** Resolves an image's manifest and config (layers stay lazy: nothing is downloaded). */
  pull(ref: string): Promise<Image>;
  report: Reporter;
}

const FS_KINDS = new Set(["run", "copy", "add", "workdir"]);

/**
 * `--dryrun`: resolves everything a build would need without executing a step, extracting a layer,
 * writing an output or pushing. The Dockerfile is already parsed and the stage graph resolved by the
 * caller (so syntax errors, unknown targets and cycles fail as in a real build); this resolves every
 * base image and every `--from` image in the registry (manifest and config only, for the target
 * platform), and reports the plan as info events. Returns the plan and the final stage's root image
 * (its base image, following FROM-an-earlier-stage chains; undefined for scratch).
 */
export async function planBuild(p: PlanInputs): Promise<{ plan: BuildPlan; finalBase: Image | undefined }> {
  const images = new Map<string, Digest>();
  const resolved = new Map<number, Image | undefined>();
  const stages: PlannedStage[] = [];
  const isStage = (ref: string, before: number): Stage | undefined =>
    earlierStage(p.allStages, before, ref, p.expandFrom);
  const image = async (ref: string): Promise<Image> => {
    const img = await p.pull(ref);
    images.set(ref, img.digest);
    return img;
  };
  for (const stage of p.stages) {
    const base = p.expandFrom(stage.from.image);
    const prior = base.toLowerCase() === "scratch" ? undefined : isStage(base, stage.index);
    let root: Image | undefined;
    let baseDigest: Digest | undefined;
    if (prior) root = resolved.get(prior.index);
    else if (base.toLowerCase() !== "scratch") {
      root = await image(base);
      baseDigest = root.digest;
    }
    resolved.set(stage.index, root);
    for (const instr of stage.instructions) {
      const refs: string[] = [];
      if ((instr.kind === "copy" || instr.kind === "add") && instr.from !== undefined) refs.push(instr.from);
      if (instr.kind === "run") for (const m of instr.mounts) if (m.from !== undefined) refs.push(m.from);
      for (const ref of refs) {
        if (isStage(ref, stage.index)) continue;
        await image(p.expandFrom(ref));
      }
    }
    const planned: PlannedStage = {
      index: stage.index,
      ...(stage.name ? { name: stage.name } : {}),
      base,
      ...(baseDigest ? { baseDigest } : {}),
      instructions: stage.instructions.length,
      fsSteps: stage.instructions.filter((i) => FS_KINDS.has(i.kind)).length,
    };
    stages.push(planned);
    p.report({
      kind: "info",
      message:
        `Dry run: stage ${stage.index}${stage.name ? ` (${stage.name})` : ""} FROM ${base}` +
        `${baseDigest ? `@${baseDigest}` : ""}: ${planned.instructions} instructions, ${planned.fsSteps} would execute`,
    });
  }
  const o = p.opts;
  const outputs: string[] = [];
  if (!o.noPush) for (const d of o.destinations) outputs.push(`push ${d}`);
  if (o.ociLayoutPath) outputs.push(`oci-layout ${o.ociLayoutPath}`);
  if (o.tarPath) outputs.push(`docker-archive ${o.tarPath}`);
  for (const f of [o.digestFile, o.imageNameWithDigestFile, o.imageNameTagWithDigestFile])
    if (f) outputs.push(`file ${f}`);
  for (const out of outputs) p.report({ kind: "info", message: `Dry run: would write ${out}` });
  p.report({ kind: "info", message: "Dry run complete: no step was executed, nothing was written or pushed" });
  const last = p.stages[p.stages.length - 1];
  return {
    plan: { stages, images: [...images].map(([ref, digest]) => ({ ref, digest })), outputs },
    finalBase: last ? resolved.get(last.index) : undefined,
  };
}
