import { DockerfileError, ErrorCodes, type Warning } from "./errors.js";
import { trimLeftSpace, goTrimSpace } from "./go-quote.js";
import { utf8Length } from "./go-strings.js";
import { heredocsFromLine, type Heredoc } from "./heredoc.js";
import { newNodeFromLine } from "./line-parsers.js";

/** One argument of an AST instruction node; ONBUILD's argument carries the parsed trigger in `child`. */
export interface AstArg {
  value: string;
  child?: AstNode;
}

/** One instruction as the low-level parser sees it (BuildKit `parser.Node`). */
export interface AstNode {
  /** The instruction keyword as written (`FROM`, `run`…). */
  value: string;
  /** Leading `--flag` words, unquoted. */
  flags: string[];
  args: AstArg[];
  /** True when the arguments were a JSON array. */
  json: boolean;
  /** The logical line (continuations joined). */
  original: string;
  startLine: number;
  endLine: number;
  /** Heredoc bodies in order; content not chomped. */
  heredocs: Heredoc[];
  /** The comment lines right before the instruction. */
  prevComment: string[];
}

/** The result of {@link parseAst}. */
export interface AstResult {
  children: AstNode[];
  escapeToken: "\\" | "`";
  directives: Record<string, string>;
  warnings: Warning[];
}

/** Maximum physical line length in bytes (bufio.Scanner's limit in BuildKit). */
export const MAX_LINE_BYTES = 65535;

const VALID_DIRECTIVES = new Set(["syntax", "escape", "check"]);
const RE_DIRECTIVE = /^#[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*([^\n]+?)[\t\n\f\r ]*$/;

function continuationRegex(escape: string): RegExp {
  const e = "\\" + escape;
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
}

const trimNewline = (s: string): string => s.replace(/[\r\n]+$/, "");
const isComment = (s: string): boolean => trimLeftSpace(trimNewline(s)).startsWith("#");

class ParseContext {
  escapeToken: "\\" | "`" = "\\";
  continuation = continuationRegex("\\");
  directivesDone = false;
  /** True when the last line given to possibleDirective was a parser directive. */
  isDirectiveLine = false;
  readonly directives: Record<string, string> = {};

  constructor(readonly file: string) {}

  possibleDirective(line: string, lineNo: number): void {
    this.isDirectiveLine = false;
    if (this.directivesDone) return;
    const m = RE_DIRECTIVE.exec(line);
    const key = m?.[1]?.toLowerCase();
    if (!m || key === undefined || !VALID_DIRECTIVES.has(key)) {
      this.directivesDone = true;
      return;
    }
    const value = m[2] ?? "";
    if (key in this.directives) {
      throw new DockerfileError(ErrorCodes.directive, `only one ${key} parser directive can be used`, {
        file: this.file,
        range: { start: lineNo, end: lineNo },
        lineText: line,
        hint: `remove the repeated "# ${key}=" line`,
      });
    }
    if (key === "escape") {
      if (value !== "`" && value !== "\\") {
        throw new DockerfileError(ErrorCodes.directive, `invalid escape token '${value}' does not match \` or \\`, {
          file: this.file,
          range: { start: lineNo, end: lineNo },
          lineText: line,
          hint: "use `# escape=\\` or `# escape=``",
        });
      }
      this.escapeToken = value;
      this.continuation = continuationRegex(value);
    }
    this.directives[key] = value;
    this.isDirectiveLine = true;
  }

  processLine(raw: string, stripLeft: boolean, lineNo: number): string {
    let token = trimNewline(raw);
    if (stripLeft) token = trimLeftSpace(token);
    this.possibleDirective(token, lineNo);
    return isComment(token) ? "" : token;
  }

  trimContinuation(line: string): { line: string; end: boolean } {
    if (this.continuation.test(line)) return { line: line.replace(this.continuation, "$1"), end: false };
    return { line, end: true };
  }
}

function splitPhysicalLines(text: string): string[] {
  const lines: string[] = [];
  let i = 0;
  while (i < text.length) {
    const j = text.indexOf("\n", i);
    if (j < 0) {
      lines.push(text.slice(i));
      break;
    }
    lines.push(text.slice(i, j + 1));
    i = j + 1;
  }
  return lines;
}

/**
 * Parses Dockerfile text into BuildKit's low-level AST (directives, comments, continuations, heredocs).
 * Throws {@link DockerfileError} with file and line on malformed input.
 */
export function parseAst(text: string, file = "Dockerfile"): AstResult {
  const ctx = new ParseContext(file);
  const lines = splitPhysicalLines(text);
  const children: AstNode[] = [];
  const warnings: Warning[] = [];
  let comments: string[] = [];
  let idx = 0;
  let currentLine = 0;
  const scan = (): string | undefined => {
    const l = lines[idx];
    if (l === undefined) return undefined;
    idx++;
    if (utf8Length(trimNewline(l)) > MAX_LINE_BYTES) {
      throw new DockerfileError(
        ErrorCodes.lineTooLong,
        `dockerfile line greater than max allowed size of ${MAX_LINE_BYTES}`,
        {
          file,
          range: { start: idx, end: idx },
          hint: "split the line with line continuations",
        },
      );
    }
    return l;
  };

  for (let raw = scan(); raw !== undefined; raw = scan()) {
    if (currentLine === 0 && raw.startsWith("\uFEFF")) raw = raw.slice(1);
    const wasDirective = !ctx.directivesDone;
    let bytesRead = ctx.processLine(raw, true, currentLine + 1);
    if (isComment(raw) && !(wasDirective && ctx.isDirectiveLine)) {
      const comment = goTrimSpace(raw.slice(1));
      if (comment === "") comments = [];
      else comments.push(comment);
    }
    currentLine++;
    const startLine = currentLine;
    let t = ctx.trimContinuation(bytesRead);
    if (t.end && t.line.length === 0) continue;
    let buf = t.line;
    let hasEmptyContinuation = false;
    while (!t.end) {
      const next = scan();
      if (next === undefined) break;
      bytesRead = ctx.processLine(next, false, currentLine + 1);
      currentLine++;
      if (isComment(next)) continue;
      if (trimLeftSpace(trimNewline(bytesRead)).length === 0) {
        hasEmptyContinuation = true;
        continue;
      }
      t = ctx.trimContinuation(bytesRead);
      buf += t.line;
    }
    const line = buf;
    const range = { start: startLine, end: currentLine };
    if (hasEmptyContinuation) {
      warnings.push({
        code: "EMPTY_CONTINUATION",
        message: `Empty continuation line found in: ${line}`,
        range: { start: currentLine, end: currentLine },
      });
    }
    let child: AstNode;
    try {
      child = newNodeFromLine(line, ctx.escapeToken, comments);
    } catch (e) {
      if (e instanceof DockerfileError) throw e.withLocation({ file, range, lineText: line });
      throw e;
    }
    if (canContainHeredoc(child) && line.includes("<<")) {
      let docs: Heredoc[];
      try {
        docs = heredocsFromLine(line);
      } catch (e) {
        if (e instanceof DockerfileError) throw e.withLocation({ file, range, lineText: line });
        throw e;
      }
      for (const doc of docs) {
        let terminated = false;
        for (let body = scan(); body !== undefined; body = scan()) {
          currentLine++;
          let candidate = trimNewline(body);
          if (doc.chomp) candidate = candidate.replace(/^\t+/, "");
          if (candidate === doc.name) {
            terminated = true;
            break;
          }
          doc.content += body;
        }
        if (!terminated) {
          throw new DockerfileError(ErrorCodes.heredoc, "unterminated heredoc", {
            file,
            range: { start: startLine, end: currentLine },
            lineText: line,
            hint: `end the here-document with a line containing only ${doc.name}`,
          });
        }
        child.heredocs.push(doc);
      }
    }
    child.startLine = startLine;
    child.endLine = currentLine;
    children.push(child);
    comments = [];
  }
  if (children.length === 0) {
    throw new DockerfileError(ErrorCodes.empty, "file with no instructions", {
      file,
      hint: "a Dockerfile needs at least a FROM instruction",
    });
  }
  return { children, escapeToken: ctx.escapeToken, directives: ctx.directives, warnings };
}

function canContainHeredoc(node: AstNode): boolean {
  let n = node;
  if (n.value.toLowerCase() === "onbuild") {
    const c = n.args[0]?.child;
    if (c) n = c;
  }
  const kw = n.value.toLowerCase();
  if (kw !== "run" && kw !== "copy" && kw !== "add") return false;
  return !n.json;
}
