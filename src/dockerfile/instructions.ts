import type { SourceRange } from "./errors.js";
import type { Heredoc } from "./heredoc.js";

/** How a command was written: exec (JSON array) form or shell form. */
export type CommandForm = { form: "exec"; args: string[] } | { form: "shell"; command: string };

/** One `RUN --mount=…` option, with BuildKit's documented defaults applied. */
export interface RunMount {
  type: "bind" | "cache" | "tmpfs" | "secret" | "ssh";
  target?: string;
  source?: string;
  from?: string;
  readonly?: boolean;
  id?: string;
  sharing?: "shared" | "private" | "locked";
  mode?: number;
  uid?: number;
  gid?: number;
  required?: boolean;
  env?: string;
  /** tmpfs size limit in bytes. */
  size?: number;
  /** The flag value as written (after `--mount=`). */
  raw: string;
}

/** Fields every instruction has. */
export interface InstructionBase {
  /** Physical lines the instruction spans (1-based, inclusive; heredoc bodies included). */
  range: SourceRange;
  /** The logical line as written (continuations joined). */
  original: string;
}

/** `FROM [--platform=…] image [AS name]`. */
export interface FromInstruction extends InstructionBase {
  kind: "from";
  image: string;
  /** Lower-cased stage name. */
  stageName?: string;
  platform?: string;
}
/** `RUN`. */
export interface RunInstruction extends InstructionBase {
  kind: "run";
  command: CommandForm;
  heredocs: Heredoc[];
  mounts: RunMount[];
  network?: "default" | "none" | "host";
  security?: "sandbox" | "insecure";
}
/** `CMD`. */
export interface CmdInstruction extends InstructionBase {
  kind: "cmd";
  command: CommandForm;
}
/** `ENTRYPOINT`. */
export interface EntrypointInstruction extends InstructionBase {
  kind: "entrypoint";
  command: CommandForm;
}
/** `SHELL` (exec form only). */
export interface ShellInstruction extends InstructionBase {
  kind: "shell";
  command: CommandForm;
}
/** Fields shared by COPY and ADD. */
export interface CopyLikeFields {
  /** Source paths/URLs, heredoc markers excluded (their bodies are in `heredocs`). */
  sources: string[];
  dest: string;
  /** Inline sources (`COPY <<EOF /dest`), in order; `name` is the file name. */
  heredocs: Heredoc[];
  from?: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  parents: boolean;
  excludes: string[];
}
/** `COPY`. */
export interface CopyInstruction extends InstructionBase, CopyLikeFields {
  kind: "copy";
}
/** `ADD`. */
export interface AddInstruction extends InstructionBase, CopyLikeFields {
  kind: "add";
  checksum?: string;
  keepGitDir: boolean;
  /** `--unpack`; absent when not given (archives from the context are unpacked, URLs are not). */
  unpack?: boolean;
}
/** A `key=value` pair of ENV or LABEL. */
export interface KeyValue {
  key: string;
  value: string;
}
/** `ENV`. */
export interface EnvInstruction extends InstructionBase {
  kind: "env";
  pairs: KeyValue[];
}
/** `LABEL`. */
export interface LabelInstruction extends InstructionBase {
  kind: "label";
  pairs: KeyValue[];
}
/** One `name[=default]` of an ARG. */
export interface ArgDecl {
  key: string;
  value?: string;
}
/** `ARG`. */
export interface ArgInstruction extends InstructionBase {
  kind: "arg";
  args: ArgDecl[];
}
/** `WORKDIR`. */
export interface WorkdirInstruction extends InstructionBase {
  kind: "workdir";
  value: string;
}
/** `USER`. */
export interface UserInstruction extends InstructionBase {
  kind: "user";
  value: string;
}
/** `STOPSIGNAL`. */
export interface StopsignalInstruction extends InstructionBase {
  kind: "stopsignal";
  value: string;
}
/** `MAINTAINER` (deprecated). */
export interface MaintainerInstruction extends InstructionBase {
  kind: "maintainer";
  value: string;
}
/** `EXPOSE`. */
export interface ExposeInstruction extends InstructionBase {
  kind: "expose";
  values: string[];
}
/** `VOLUME`. */
export interface VolumeInstruction extends InstructionBase {
  kind: "volume";
  values: string[];
}
/** `HEALTHCHECK`; durations in nanoseconds. `CMD` shell form yields a shell-form test. */
export interface HealthcheckInstruction extends InstructionBase {
  kind: "healthcheck";
  test: CommandForm | "NONE";
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}
/** `ONBUILD <trigger>`; `triggerText` is what goes into the image config (heredoc bodies appended). */
export interface OnbuildInstruction extends InstructionBase {
  kind: "onbuild";
  trigger: Instruction;
  triggerText: string;
}

/** Any Dockerfile instruction, discriminated on `kind`; values are unexpanded. */
export type Instruction =
  | FromInstruction
  | RunInstruction
  | CmdInstruction
  | EntrypointInstruction
  | ShellInstruction
  | CopyInstruction
  | AddInstruction
  | EnvInstruction
  | LabelInstruction
  | ArgInstruction
  | WorkdirInstruction
  | UserInstruction
  | ExposeInstruction
  | VolumeInstruction
  | StopsignalInstruction
  | HealthcheckInstruction
  | OnbuildInstruction
  | MaintainerInstruction;

/** Every instruction keyword, upper case. */
export const INSTRUCTION_KEYWORDS: readonly string[] = Object.freeze([
  "FROM",
  "RUN",
  "CMD",
  "ENTRYPOINT",
  "SHELL",
  "COPY",
  "ADD",
  "ENV",
  "LABEL",
  "ARG",
  "WORKDIR",
  "USER",
  "EXPOSE",
  "VOLUME",
  "STOPSIGNAL",
  "HEALTHCHECK",
  "ONBUILD",
  "MAINTAINER",
]);
