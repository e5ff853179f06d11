import { KilnError } from "../../common/errors.js";
import type { AddInstruction, CopyInstruction } from "../../dockerfile/index.js";
import { parseChmod } from "../chmod.js";
import { copyIntoRoot } from "./copy.js";
import type { StepContext, StepOutput } from "./step-context.js";

/**
 * COPY and ADD (local sources): resolves `--chown` in the stage root, copies from the context or
 * the `--from` stage/image, and reports exactly the paths it wrote (no walk needed).
 */
export async function execCopy(instr: CopyInstruction | AddInstruction, ctx: StepContext): Promise<StepOutput> {
  const kw = instr.kind.toUpperCase();
  if (instr.kind === "add" && instr.sources.some((s) => /^(https?|git):\/\//.test(s) || s.endsWith(".git"))) {
    throw new KilnError("NOT_IMPLEMENTED", "ADD from a URL or git repository is not implemented yet");
  }
  if (instr.heredocs.length > 0) throw new KilnError("NOT_IMPLEMENTED", `${kw} with a heredoc is not implemented yet`);
  if (instr.parents || instr.excludes.length > 0) {
    throw new KilnError("NOT_IMPLEMENTED", `${kw} --parents/--exclude is not implemented yet`);
  }
  const root = await ctx.rootDir();
  const owner = instr.chown ? await ctx.identity(instr.chown) : { uid: 0, gid: 0 };
  const from = instr.from ? await ctx.fromRoot(instr.from) : ctx.context;
  const t0 = Date.now();
  const written = await copyIntoRoot(root, from, instr.sources, instr.dest, ctx.config.WorkingDir || "/", {
    uid: owner.uid,
    gid: owner.gid,
    chmod: instr.chmod ? parseChmod(instr.chmod) : undefined,
  });
  ctx.report({ kind: "phase", phase: "copy", ms: Date.now() - t0, stage: ctx.stageIndex });
  return { snapshot: { kind: "paths", paths: written }, detail: [...instr.sources, instr.dest].join(" ") };
}
