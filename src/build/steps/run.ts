import { KilnError } from "../../common/errors.js";
import type { Heredoc, RunInstruction } from "../../dockerfile/index.js";
import type { Runner } from "../../run/index.js";
import { RunFailedError } from "../errors.js";
import type { Identity } from "../user.js";

/** Everything a RUN step needs besides the instruction. */
export interface RunStepInput {
  root: string;
  shell: readonly string[];
  env: string[];
  cwd: string;
  identity: Identity;
  location: string;
  onOutput: (stream: "stdout" | "stderr", data: Buffer) => void;
}

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

/** Runs one RUN step; throws RunFailedError (with the exit code) when the command fails. */
export async function runStep(
  instr: RunInstruction,
  input: RunStepInput,
  runner: Runner,
  signal?: AbortSignal,
): Promise<void> {
  if (instr.mounts.length > 0) {
    throw new KilnError("NOT_IMPLEMENTED", `RUN --mount is not implemented yet`);
  }
  const argv = runArgv(instr, input.shell);
  const result = await runner.run(
    {
      root: input.root,
      argv,
      env: input.env,
      cwd: input.cwd,
      uid: input.identity.uid,
      gid: input.identity.gid,
      groups: input.identity.groups,
      network: instr.network === "none" ? "none" : "host",
      mounts: [],
      hostNetworkFiles: instr.network !== "none",
    },
    { stdout: (c) => input.onOutput("stdout", c), stderr: (c) => input.onOutput("stderr", c) },
    signal,
  );
  if (result.exitCode !== 0) {
    const how = result.signal ? `was killed by ${result.signal}` : `returned a non-zero code: ${result.exitCode}`;
    throw new RunFailedError(`${input.location}: the command '${argv.join(" ")}' ${how}`, result.exitCode);
  }
}
