import { KilnError } from "../common/errors.js";
import type { DirContext } from "../context/index.js";
import { envFromPairs, expandInstruction, type Instruction, type Stage } from "../dockerfile/index.js";
import { earlierStage } from "./stage-uses.js";
import type { Digest } from "../image/digest.js";
import type { Image } from "../image/types.js";
import { setEnv, splitEnv } from "./env.js";
import { stepError } from "./errors.js";
import type { Reporter } from "./events.js";
import type { BuildOptions } from "./options.js";
import { textOutputShown } from "./outputs.js";
import { isRemoteSource, planAddGitSources } from "./steps/add-git.js";
import { matchSources } from "./steps/copy-sources.js";

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
  /** The build context (`.dockerignore` applied): COPY/ADD sources are resolved in it, nothing is written. */
  context?: DirContext;
  /** What an in-stage `ARG X` without a value takes when no build-arg gives one (global ARGs, platform args). */
  argDefaults?: ReadonlyMap<string, string | undefined>;
  /** The Dockerfile's escape token (default `\\`). */
  escapeToken?: "\\" | "`";
}

const FS_KINDS = new Set(["run", "copy", "add", "workdir"]);

/** The variables a stage's instructions see: ARGs in scope (undefined: declared without a value) and ENV. */
interface StageVars {
  args: Map<string, string | undefined>;
  env: string[];
}

/**
 * Follows one instruction's effect on the stage's variables, as the step loop does: ARG takes the
 * build-arg, else its own default, else the value in scope or the global default; ENV sets the env.
 */
function trackVars(instr: Instruction, vars: StageVars, p: PlanInputs): void {
  if (instr.kind === "arg") {
    for (const a of instr.args) {
      let value = a.value;
      if (Object.prototype.hasOwnProperty.call(p.opts.buildArgs, a.key)) value = p.opts.buildArgs[a.key];
      else if (value === undefined && vars.args.get(a.key) !== undefined) value = vars.args.get(a.key);
      else if (value === undefined) value = p.argDefaults?.get(a.key);
      vars.args.set(a.key, value);
    }
  } else if (instr.kind === "env") {
    for (const kv of instr.pairs) vars.env = setEnv(vars.env, kv.key, kv.value);
  }
}

/**
 * Resolves the build-context sources of a COPY/ADD (no `--from`, no URL or git source) with the
 * context's resolver, as the real step would before copying anything: a missing or .dockerignore'd
 * source fails with the same error, and so does a set of wildcards that matches nothing. Git sources are
 * parsed, not fetched.
 */
async function checkContextSources(instr: Instruction, context: DirContext): Promise<void> {
  if ((instr.kind !== "copy" && instr.kind !== "add") || instr.from !== undefined) return;
  // A git source's URL options (and the flags they meet) fail here as they would in the build.
  if (instr.kind === "add") planAddGitSources(instr);
  const remote = (s: string): boolean => instr.kind === "add" && isRemoteSource(s);
  const locals = instr.sources.filter((s) => !remote(s));
  if (locals.length === 0) return;
  const matches = await matchSources(context, locals, { parents: instr.parents, excludes: instr.excludes });
  if (matches.length > 0 || locals.length < instr.sources.length || instr.heredocs.length > 0) return;
  // BuildKit: with --parents a wildcard that matches nothing is not an error (as in steps/copy-step.ts).
  if (instr.parents && locals.every((s) => /[*?[]/.test(s))) return;
  throw new KilnError(
    "COPY_NO_SOURCE",
    `${instr.kind.toUpperCase()}: no source files were specified (nothing matched ${instr.sources.join(" ")}, or --exclude removed everything)`,
  );
}

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
  const stageVars = new Map<number, StageVars>();
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
    const inherited = prior ? stageVars.get(prior.index) : undefined;
    const vars: StageVars = {
      args: new Map(inherited?.args),
      env: [...(inherited ? inherited.env : (root?.config.config?.Env ?? []))],
    };
    stageVars.set(stage.index, vars);
    for (const raw of stage.instructions) {
      const location = `${p.opts.dockerfileName}:${raw.range.start}`;
      try {
        const pairs = new Map<string, string>();
        for (const [k, v] of vars.args) if (v !== undefined) pairs.set(k, v);
        for (const e of vars.env) pairs.set(...splitEnv(e));
        // A build-arg skips the ARG's default, as in the step loop.
        const given = (k: string): boolean => Object.prototype.hasOwnProperty.call(p.opts.buildArgs, k);
        const toExpand: Instruction =
          raw.kind === "arg" ? { ...raw, args: raw.args.map((a) => (given(a.key) ? { key: a.key } : a)) } : raw;
        const instr = expandInstruction(toExpand, envFromPairs(pairs), p.escapeToken ?? "\\").instruction;
        trackVars(instr, vars, p);
        if (p.context) await checkContextSources(instr, p.context);
      } catch (e) {
        throw stepError(location, raw.original, e);
      }
      const refs: string[] = [];
      if ((raw.kind === "copy" || raw.kind === "add") && raw.from !== undefined) refs.push(raw.from);
      if (raw.kind === "run") for (const m of raw.mounts) if (m.from !== undefined) refs.push(m.from);
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
    if (f) outputs.push(`file ${textOutputShown(f)}`);
  for (const out of outputs) p.report({ kind: "info", message: `Dry run: would write ${out}` });
  p.report({ kind: "info", message: "Dry run complete: no step was executed, nothing was written or pushed" });
  const last = p.stages[p.stages.length - 1];
  return {
    plan: { stages, images: [...images].map(([ref, digest]) => ({ ref, digest })), outputs },
    finalBase: last ? resolved.get(last.index) : undefined,
  };
}
