import { parseAst, type AstNode } from "./ast.js";
import { applyChecks, parseCheckDirective } from "./checks.js";
import { toInstruction } from "./convert.js";
import { DockerfileError, ErrorCodes, type Warning } from "./errors.js";
import type { ArgInstruction, FromInstruction, Instruction } from "./instructions.js";

/** One build stage: its FROM and the instructions after it (the FROM excluded). */
export interface Stage {
  index: number;
  /** Lower-cased `AS` name. */
  name?: string;
  from: FromInstruction;
  instructions: Instruction[];
}

/** A parsed Dockerfile. */
export interface Dockerfile {
  /** The file name given to {@link parseDockerfile} (used in error messages). */
  file: string;
  escapeToken: "\\" | "`";
  /** Parser directives (`syntax`, `escape`, `check`), keys lower-cased. */
  directives: Record<string, string>;
  /** ARG instructions before the first FROM. */
  metaArgs: ArgInstruction[];
  stages: Stage[];
  warnings: Warning[];
}

/**
 * The most stages one Dockerfile may have. Real Dockerfiles have a handful; the cap keeps a
 * generated file with a huge chain of stages from costing unbounded time and memory later.
 */
export const MAX_STAGES = 10_000;

/** Options of {@link parseDockerfile}. */
export interface ParseOptions {
  /** File name used in error messages (default `Dockerfile`). */
  file?: string;
}

/**
 * Parses Dockerfile text into typed instructions grouped in stages. Values stay unexpanded.
 * Throws {@link DockerfileError} (file:line, offending line, hint) for any user error.
 */
export function parseDockerfile(text: string, opts: ParseOptions = {}): Dockerfile {
  const file = opts.file ?? "Dockerfile";
  const ast = parseAst(text, file);
  const warnings: Warning[] = [...ast.warnings];
  const metaArgs: ArgInstruction[] = [];
  const stages: Stage[] = [];
  const names = new Map<string, number>();
  for (const node of ast.children) {
    const instr = toInstruction(node, { file, warnings });
    if (instr.kind === "from") {
      if (stages.length >= MAX_STAGES) {
        throw new DockerfileError(ErrorCodes.stage, `too many stages (more than ${MAX_STAGES})`, {
          file,
          range: instr.range,
          lineText: instr.original,
          hint: "split the build into several Dockerfiles",
        });
      }
      const stage: Stage = { index: stages.length, from: instr, instructions: [] };
      if (instr.stageName !== undefined) {
        const prev = names.get(instr.stageName);
        if (prev !== undefined) {
          throw new DockerfileError(ErrorCodes.stage, `duplicate stage name ${JSON.stringify(instr.stageName)}`, {
            file,
            range: instr.range,
            lineText: instr.original,
            hint: `stage ${prev} already uses that name; rename one of them`,
          });
        }
        names.set(instr.stageName, stage.index);
        stage.name = instr.stageName;
      }
      stages.push(stage);
      continue;
    }
    const current = stages[stages.length - 1];
    if (current) {
      current.instructions.push(instr);
    } else if (instr.kind === "arg") {
      metaArgs.push(instr);
    } else {
      throw new DockerfileError(ErrorCodes.stage, `${node.value.toUpperCase()} instruction before the first FROM`, {
        file,
        range: instr.range,
        lineText: instr.original,
        hint: "only ARG may come before the first FROM; start a stage with FROM <image>",
      });
    }
  }
  if (stages.length === 0) {
    throw new DockerfileError(ErrorCodes.empty, "dockerfile contains no stages to build", {
      file,
      hint: "add FROM <image> (or FROM scratch)",
    });
  }
  lintCasing(ast.children, warnings);
  for (const s of stages) lintMultiple(s, warnings);
  const checked = applyChecks(warnings, parseCheckDirective(ast.directives["check"]));
  return { file, escapeToken: ast.escapeToken, directives: ast.directives, metaArgs, stages, warnings: checked };
}

/**
 * Parses one instruction (possibly followed by its heredoc bodies), as stored in an image's
 * ONBUILD triggers. Throws DockerfileError when the text is not exactly one instruction.
 */
export function parseInstructionLine(text: string, opts: ParseOptions & { escape?: "\\" | "`" } = {}): Instruction {
  const file = opts.file ?? "ONBUILD trigger";
  const prefix = opts.escape === "`" ? "# escape=`\n" : "";
  const ast = parseAst(prefix + text, file);
  if (ast.children.length !== 1) {
    throw new DockerfileError(ErrorCodes.syntax, `expected one instruction, found ${ast.children.length}`, {
      file,
      lineText: text,
      hint: "give a single instruction",
    });
  }
  const node = ast.children[0];
  if (!node) throw new DockerfileError(ErrorCodes.syntax, "expected one instruction", { file });
  if (prefix) {
    node.startLine--;
    node.endLine--;
  }
  return toInstruction(node, { file, warnings: [] });
}

function lintCasing(nodes: readonly AstNode[], warnings: Warning[]): void {
  const upper = nodes.filter((n) => n.value === n.value.toUpperCase()).length;
  const lower = nodes.filter((n) => n.value === n.value.toLowerCase()).length;
  const majority = upper >= lower ? "uppercase" : "lowercase";
  for (const n of nodes) {
    const ok = majority === "uppercase" ? n.value === n.value.toUpperCase() : n.value === n.value.toLowerCase();
    if (!ok) {
      warnings.push({
        code: "CONSISTENT_INSTRUCTION_CASING",
        message: `Command '${n.value}' should match the case of the command majority (${majority})`,
        range: { start: n.startLine, end: n.endLine },
      });
    }
  }
}

function lintMultiple(stage: Stage, warnings: Warning[]): void {
  for (const kind of ["cmd", "entrypoint", "healthcheck"] as const) {
    const found = stage.instructions.filter((i) => i.kind === kind);
    for (const i of found.slice(0, -1)) {
      warnings.push({
        code: "MULTIPLE_INSTRUCTIONS_DISALLOWED",
        message: `Multiple ${kind.toUpperCase()} instructions should not be used in the same stage because only the last one will be used`,
        range: i.range,
      });
    }
  }
}
