import { KilnError } from "../../common/errors.js";
import type { Heredoc, RunInstruction } from "../../dockerfile/index.js";
import { RunFailedError } from "../errors.js";
import { quoteList } from "../history.js";
import type { StepContext, StepOutput } from "./step-context.js";
import { mkdirOwned } from "./workdir.js";

/**
 * The argv of a RUN: exec form as written; shell form through SHELL. A shell-form RUN whose
 * command is just a heredoc runs the heredoc body as the script (a shebang body is run by its
 * interpreter); other heredocs are handed to the shell as heredocs, which POSIX shells understand.
 */
export function runArgv(instr: RunInstruction, shell: readonly string[]): string[] {
  if (instr.command.form === "exec") return [...instr.command.args];
  const cmd = instr.command.command;
  const heredocs = instr.heredocs;
  if (heredocs.length === 0) return [...shell, cmd];
  const first = heredocs[0] as Heredoc;
  if (heredocs.length === 1 && /^\s*\d*<<-?\s*['"]?[A-Za-z0-9_.-]+['"]?\s*$/.test(cmd)) {
    const body = first.content;
    if (body.startsWith("#!")) {
      const line = body.slice(2, body.indexOf("\n") < 0 ? undefined : body.indexOf("\n")).trim();
      const interp = line.split(/\s+/).filter(Boolean);
      return [...interp, "-c", body.slice(body.indexOf("\n") + 1)].filter((x) => x !== undefined);
    }
    return [...shell, body];
  }
  // Re-assemble the heredocs after the command line: the shell expands or not per the quoting it sees.
  let script = cmd;
  for (const h of heredocs) {
    const content = h.content.endsWith("\n") ? h.content : `${h.content}\n`;
    script += `\n${content}${h.name}`;
  }
  return [...shell, script];
}

/**
 * Runs one RUN step in the stage root as the stage's USER, with the working directory created if
 * missing; throws RunFailedError (with the exit code) when the command fails. The whole root is
 * snapshotted afterwards.
 */
export async function execRun(instr: RunInstruction, ctx: StepContext): Promise<StepOutput> {
  if (instr.mounts.length > 0) {
    throw new KilnError("NOT_IMPLEMENTED", `RUN --mount is not implemented yet`);
  }
  const root = await ctx.rootDir();
  const id = await ctx.identity();
  const cwd = ctx.config.WorkingDir && ctx.config.WorkingDir.length > 0 ? ctx.config.WorkingDir : "/";
  await mkdirOwned(root, cwd, id.uid, id.gid);
  const argv = runArgv(instr, ctx.shell);
  const runner = await ctx.runner();
  const t0 = Date.now();
  const result = await runner.run(
    {
      root,
      argv,
      env: ctx.runEnv(id),
      cwd,
      uid: id.uid,
      gid: id.gid,
      groups: id.groups,
      network: instr.network === "none" ? "none" : "host",
      mounts: [],
      hostNetworkFiles: instr.network !== "none",
    },
    {
      stdout: (data) =>
        ctx.report({ kind: "step-output", stage: ctx.stageIndex, step: ctx.step, stream: "stdout", data }),
      stderr: (data) =>
        ctx.report({ kind: "step-output", stage: ctx.stageIndex, step: ctx.step, stream: "stderr", data }),
    },
    ctx.signal,
  );
  ctx.report({ kind: "phase", phase: "run", ms: Date.now() - t0, stage: ctx.stageIndex });
  if (result.exitCode !== 0) {
    const how = result.signal ? `was killed by ${result.signal}` : `returned a non-zero code: ${result.exitCode}`;
    throw new RunFailedError(`${ctx.location}: the command '${argv.join(" ")}' ${how}`, result.exitCode);
  }
  const detail =
    instr.command.form === "exec" ? quoteList(instr.command.args) : `${ctx.shell.join(" ")} ${instr.command.command}`;
  return { snapshot: { kind: "walk" }, detail };
}
