import { mkdtemp, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { KilnError } from "../../common/errors.js";
import type { Heredoc, RunInstruction } from "../../dockerfile/index.js";
import { runnerSupportsMounts, type RunMount } from "../../run/index.js";
import { RunFailedError } from "../errors.js";
import { quoteList } from "../history.js";
import { prepareMounts } from "./run-mounts.js";
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
 * BuildKit's history text of a RUN (after `RUN `): `|<n> k=v …` for the stage's ARGs with a value
 * (first-declaration order, final values), then the command through `shell`. Build args marked secret
 * (`--secret-build-arg`) are left out. A function of the step as it stands, so that a cache hit, whose key
 * sorts these inputs and leaves out ARGs an ENV hides, writes the text this build would write.
 */
export function runHistoryDetail(
  instr: RunInstruction,
  shell: readonly string[],
  args: ReadonlyMap<string, string | undefined>,
  secretArgs: readonly string[],
): string {
  const command =
    instr.command.form === "exec" ? quoteList(instr.command.args) : `${shell.join(" ")} ${instr.command.command}`;
  const secret = new Set(secretArgs);
  const argPairs = [...args].filter(([k, v]) => v !== undefined && !secret.has(k)).map(([k, v]) => `${k}=${v ?? ""}`);
  return argPairs.length > 0 ? `|${argPairs.length} ${argPairs.join(" ")} ${command}` : command;
}

/** Container path a shebang heredoc script is bound at while its RUN runs (never in a layer). */
export const HEREDOC_SCRIPT_PATH = "/.kiln-heredoc-script";

/** The body of a RUN whose whole command is one heredoc starting with `#!`, else undefined. */
export function shebangScript(instr: RunInstruction): string | undefined {
  if (instr.command.form !== "shell" || instr.heredocs.length !== 1) return undefined;
  if (!/^\s*\d*<<-?\s*['"]?[A-Za-z0-9_.-]+['"]?\s*$/.test(instr.command.command)) return undefined;
  const body = (instr.heredocs[0] as Heredoc).content;
  return body.startsWith("#!") ? body : undefined;
}

/**
 * Runs one RUN step in the stage root as the stage's USER, with the working directory created if
 * missing, its `--mount`s made for the duration of the command and `--network` applied; throws
 * RunFailedError (with the exit code) when the command fails. A shebang heredoc runs as a script
 * file bound read-only into the root. The whole root is snapshotted afterwards; mount targets kiln
 * created are removed before that.
 */
export async function execRun(instr: RunInstruction, ctx: StepContext): Promise<StepOutput> {
  const runner = await ctx.runner();
  const mountsOk = runnerSupportsMounts(runner);
  const script = shebangScript(instr);
  if (!mountsOk && instr.mounts.length > 0) {
    throw new KilnError(
      "RUN_ISOLATION_UNSUPPORTED",
      `${ctx.location}: RUN --mount needs mount namespaces, which the ${runner.isolation} back-end cannot create here`,
    );
  }
  const root = await ctx.rootDir();
  if (runner.isolation === "in-place" && root !== "/") {
    throw new KilnError(
      "RUN_ISOLATION_UNSUPPORTED",
      `${ctx.location}: no isolation back-end works here: RUN needs chroot (run as root), user namespaces, ` +
        "or the in-place back-end inside a container (--isolation=in-place, plus --force outside a container)",
    );
  }
  const id = await ctx.identity();
  const cwd = ctx.config.WorkingDir && ctx.config.WorkingDir.length > 0 ? ctx.config.WorkingDir : "/";
  // A missing working directory is created in the root before the step (owned by the step's user);
  // with the overlay snapshotter those directories are reported separately, since they are not in the
  // overlay's upper dir (creating them there would copy-up and re-own existing parents).
  const createdCwd = await mkdirOwned(root, cwd, id.uid, id.gid);
  const overlay = await ctx.prepareRun();
  const scratch = await mkdtemp(path.join(ctx.tmpDir, "run-"));
  let argv = runArgv(instr, ctx.shell);
  try {
    const prepared = await prepareMounts(instr.mounts, ctx, cwd, scratch);
    const mounts: RunMount[] = [...prepared.mounts];
    if (script !== undefined && mountsOk) {
      const file = path.join(scratch, "heredoc-script");
      await writeFile(file, script, { mode: 0o755 });
      mounts.push({ kind: "bind", source: file, target: HEREDOC_SCRIPT_PATH, readonly: true });
      argv = [HEREDOC_SCRIPT_PATH];
    }
    // kaniko's lines for a RUN (Cmd/Args/Running), which CI log parsers look for.
    ctx.report({ kind: "info", message: `Cmd: ${argv[0] ?? ""}` });
    ctx.report({ kind: "info", message: `Args: [${argv.slice(1).join(" ")}]` });
    ctx.report({ kind: "info", message: `Running: [${argv.join(" ")}]` });
    const t0 = Date.now();
    let result;
    try {
      result = await runner.run(
        {
          root,
          argv,
          env: [...ctx.runEnv(id), ...prepared.env],
          cwd,
          uid: id.uid,
          gid: id.gid,
          groups: id.groups,
          network: instr.network === "none" ? "none" : "host",
          mounts,
          hostNetworkFiles: instr.network !== "none",
          ...(overlay ? { overlay } : {}),
        },
        {
          stdout: (data) =>
            ctx.report({ kind: "step-output", stage: ctx.stageIndex, step: ctx.step, stream: "stdout", data }),
          stderr: (data) =>
            ctx.report({ kind: "step-output", stage: ctx.stageIndex, step: ctx.step, stream: "stderr", data }),
        },
        ctx.signal,
      );
    } finally {
      await prepared.release();
    }
    ctx.report({ kind: "phase", phase: "run", ms: Date.now() - t0, stage: ctx.stageIndex });
    if (result.exitCode !== 0) {
      const how = result.signal ? `was killed by ${result.signal}` : `returned a non-zero code: ${result.exitCode}`;
      throw new RunFailedError(`${ctx.location}: the command '${argv.join(" ")}' ${how}`, result.exitCode);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return {
    snapshot: { kind: "walk" },
    detail: runHistoryDetail(instr, ctx.shell, ctx.args, ctx.hiddenArgs),
    ...(overlay && createdCwd.length > 0 ? { alsoChanged: createdCwd } : {}),
  };
}
