import { KilnError } from "../common/errors.js";

/** A 1-based inclusive range of physical lines in a Dockerfile. */
export interface SourceRange {
  start: number;
  end: number;
}

/** A non-fatal finding of the front end (lint-style), identified by a stable `code`. */
export interface Warning {
  code: string;
  message: string;
  range?: SourceRange;
}

/** Location details attached to a {@link DockerfileError}. */
export interface DockerfileErrorDetails {
  file?: string;
  range?: SourceRange;
  column?: number;
  lineText?: string;
  hint?: string;
  cause?: unknown;
}

/**
 * The only error type the Dockerfile front end throws for user input: it names the file and line,
 * carries the offending line text and a hint saying what to do.
 * The message reads `Dockerfile:12: unknown instruction "RUNN" — did you mean RUN?`.
 */
export class DockerfileError extends KilnError {
  readonly file: string;
  readonly range?: SourceRange;
  readonly column?: number;
  readonly lineText?: string;
  readonly hint?: string;
  /** The message without the `file:line:` prefix and hint. */
  readonly detail: string;

  constructor(code: string, detail: string, details: DockerfileErrorDetails = {}) {
    const file = details.file ?? "Dockerfile";
    let where = file;
    if (details.range) {
      where += `:${details.range.start}`;
      if (details.column !== undefined) where += `:${details.column}`;
    }
    const hint = details.hint ? ` — ${details.hint}` : "";
    super(code, `${where}: ${detail}${hint}`, { cause: details.cause });
    this.file = file;
    this.detail = detail;
    if (details.range) this.range = details.range;
    if (details.column !== undefined) this.column = details.column;
    if (details.lineText !== undefined) this.lineText = details.lineText;
    if (details.hint !== undefined) this.hint = details.hint;
  }

  /** A copy of this error located at `range` in `file` (used when an error raised deep down gets its position). */
  withLocation(details: DockerfileErrorDetails): DockerfileError {
    const merged: DockerfileErrorDetails = {
      file: details.file ?? this.file,
      cause: this.cause,
    };
    const range = this.range ?? details.range;
    if (range) merged.range = range;
    const column = this.column ?? details.column;
    if (column !== undefined) merged.column = column;
    const lineText = this.lineText ?? details.lineText;
    if (lineText !== undefined) merged.lineText = lineText;
    const hint = this.hint ?? details.hint;
    if (hint !== undefined) merged.hint = hint;
    return new DockerfileError(this.code, this.detail, merged);
  }
}

/** Error codes used by the Dockerfile front end. */
export const ErrorCodes = {
  syntax: "DOCKERFILE_SYNTAX",
  unknownInstruction: "DOCKERFILE_UNKNOWN_INSTRUCTION",
  flag: "DOCKERFILE_FLAG",
  args: "DOCKERFILE_ARGUMENTS",
  empty: "DOCKERFILE_EMPTY",
  heredoc: "DOCKERFILE_HEREDOC",
  directive: "DOCKERFILE_DIRECTIVE",
  lineTooLong: "DOCKERFILE_LINE_TOO_LONG",
  expansion: "DOCKERFILE_EXPANSION",
  stage: "DOCKERFILE_STAGE",
  mount: "DOCKERFILE_MOUNT",
  dockerignore: "DOCKERIGNORE_PATTERN",
} as const;
