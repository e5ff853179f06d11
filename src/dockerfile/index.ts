/**
 * The Dockerfile front end: text → AST → typed instructions → stages, plus the shell lexer used
 * for variable expansion and .dockerignore matching. Pure code: no file system, no network.
 */
export { DockerfileError, ErrorCodes, type SourceRange, type Warning } from "./errors.js";
export type { Heredoc } from "./heredoc.js";
export { chompHeredocContent, heredocsFromLine, parseHeredocWord } from "./heredoc.js";
export type {
  AddInstruction,
  ArgDecl,
  ArgInstruction,
  CmdInstruction,
  CommandForm,
  CopyInstruction,
  CopyLikeFields,
  EntrypointInstruction,
  EnvInstruction,
  ExposeInstruction,
  FromInstruction,
  HealthcheckInstruction,
  Instruction,
  InstructionBase,
  KeyValue,
  LabelInstruction,
  MaintainerInstruction,
  OnbuildInstruction,
  RunInstruction,
  RunMount,
  ShellInstruction,
  StopsignalInstruction,
  UserInstruction,
  VolumeInstruction,
  WorkdirInstruction,
} from "./instructions.js";
export { INSTRUCTION_KEYWORDS } from "./instructions.js";
export { parseAst, type AstArg, type AstNode, type AstResult } from "./ast.js";
export { dumpAst } from "./dump.js";
export { parseDockerfile, parseInstructionLine, type Dockerfile, type ParseOptions, type Stage } from "./dockerfile.js";
export { parseMount } from "./mounts.js";
export { parseGoDuration } from "./flags.js";
export {
  EMPTY_ENV,
  envFromPairs,
  expandWord,
  expandWords,
  lex,
  type EnvLookup,
  type LexOptions,
  type LexResult,
} from "./shell-lexer.js";
export { expandHeredoc, expandInstruction, undefinedVarWarning } from "./expand.js";
export { PLATFORM_ARGS, PROXY_ARGS, findStage, stagesNeeded } from "./stages.js";
export {
  formatPlatform,
  platformArgValues,
  resolveArgValue,
  resolveMetaArgs,
  unusedBuildArgs,
  type PlatformSpec,
} from "./args.js";
export { parseDockerignore } from "./dockerignore.js";
export { PatternMatcher, type CompiledPattern } from "./pattern-matcher.js";
export { BadPatternError, globMatch } from "../common/glob-match.js";
export { cleanPath } from "../common/clean-path.js";
export { filterContext, type ContextEntry, type ContextFilter } from "./context-filter.js";
export { exposedPorts } from "./expose.js";
export { WARNING_RULES, applyChecks, parseCheckDirective, type CheckConfig } from "./checks.js";
