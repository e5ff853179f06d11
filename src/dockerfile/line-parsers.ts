import type { AstArg, AstNode } from "./ast.js";
import { DockerfileError, ErrorCodes } from "./errors.js";
import { goTrimSpace, isGoSpace, trimLeftSpace } from "./go-quote.js";
import { goSplit, RE_WHITESPACE } from "./go-strings.js";

/** Builds the AST node of one logical line (BuildKit `newNodeFromLine`). */
export function newNodeFromLine(line: string, escape: "\\" | "`", comments: string[]): AstNode {
  const { cmd, flags, args } = splitCommand(line);
  const parsed = dispatchArgs(cmd.toLowerCase(), args, escape);
  return {
    value: cmd,
    flags,
    args: parsed.args,
    json: parsed.json,
    original: line,
    startLine: 0,
    endLine: 0,
    heredocs: [],
    prevComment: comments,
  };
}

function splitCommand(line: string): { cmd: string; flags: string[]; args: string } {
  const parts = goSplit(RE_WHITESPACE, goTrimSpace(line), 2);
  let args = "";
  let flags: string[] = [];
  if (parts.length === 2) {
    const r = extractBuilderFlags(parts[1] as string);
    args = r.rest;
    flags = r.flags;
  }
  return { cmd: parts[0] ?? "", flags, args: goTrimSpace(args) };
}

function extractBuilderFlags(line: string): { rest: string; flags: string[] } {
  const words: string[] = [];
  let phase: "spaces" | "word" | "quote" = "spaces";
  let word = "";
  let quote = "";
  let blankOK = false;
  for (let pos = 0; pos <= line.length; pos++) {
    const ch = pos < line.length ? (line[pos] as string) : "";
    if (phase === "spaces") {
      if (pos === line.length) break;
      if (isGoSpace(ch)) continue;
      if (ch !== "-" || pos + 1 === line.length || line[pos + 1] !== "-")
        return { rest: line.slice(pos), flags: words };
      phase = "word";
    }
    if (pos === line.length) {
      if (word !== "--" && (blankOK || word.length > 0)) words.push(word);
      break;
    }
    if (phase === "word") {
      if (isGoSpace(ch)) {
        phase = "spaces";
        if (word === "--") return { rest: line.slice(pos), flags: words };
        if (blankOK || word.length > 0) words.push(word);
        word = "";
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = "quote";
        continue;
      }
      let c = ch;
      if (c === "\\") {
        if (pos + 1 === line.length) continue;
        pos++;
        c = line[pos] as string;
      }
      word += c;
      continue;
    }
    // phase === "quote"
    if (ch === quote) {
      phase = "word";
      continue;
    }
    let c = ch;
    if (c === "\\") {
      if (pos + 1 === line.length) {
        phase = "word";
        continue;
      }
      pos++;
      c = line[pos] as string;
    }
    word += c;
  }
  return { rest: "", flags: words };
}

/** BuildKit `parseWords`: quote-aware whitespace split that keeps quotes and escapes. */
export function parseWords(rest: string, escape: string): string[] {
  const words: string[] = [];
  const chars = Array.from(rest);
  let phase: "spaces" | "word" | "quote" = "spaces";
  let word = "";
  let quote = "";
  let blankOK = false;
  for (let pos = 0; pos <= chars.length; pos++) {
    let ch = pos < chars.length ? (chars[pos] as string) : "";
    if (phase === "spaces") {
      if (pos === chars.length) break;
      if (isGoSpace(ch)) continue;
      phase = "word";
    }
    if (pos === chars.length) {
      if (blankOK || word.length > 0) words.push(word);
      break;
    }
    if (phase === "word") {
      if (isGoSpace(ch)) {
        phase = "spaces";
        if (blankOK || word.length > 0) words.push(word);
        word = "";
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = "quote";
      }
      if (ch === escape) {
        if (pos + 1 === chars.length) continue;
        word += ch;
        pos++;
        ch = chars[pos] as string;
      }
      word += ch;
      continue;
    }
    if (ch === quote) phase = "word";
    if (ch === escape && quote !== "'") {
      if (pos + 1 === chars.length) {
        phase = "word";
        continue;
      }
      pos++;
      word += ch;
      ch = chars[pos] as string;
    }
    word += ch;
  }
  return words;
}

type Parsed = { args: AstArg[]; json: boolean };
const NONE: Parsed = { args: [], json: false };
const vals = (values: string[]): AstArg[] => values.map((value) => ({ value }));

function syntaxError(message: string, hint?: string): DockerfileError {
  return new DockerfileError(ErrorCodes.syntax, message, hint ? { hint } : {});
}

/** Error for a JSON array containing something other than strings. */
const NOT_STRING_ARRAY = "when using JSON array syntax, arrays must be comprised of strings only";

/**
 * Length of the first JSON value at the start of `s` when it is an array, else -1. BuildKit decodes
 * with Go's json.Decoder, which reads ONE value and ignores what follows it
 * (`ENTRYPOINT ["x"] # note` is exec form), so only that prefix is parsed.
 */
function firstArrayLength(s: string): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === "[" || c === "{") depth++;
    else if (c === "]" || c === "}") {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

function parseJSON(rest: string): Parsed | undefined {
  const r = trimLeftSpace(rest);
  if (!r.startsWith("[")) return undefined;
  const end = firstArrayLength(r);
  if (end < 0) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(r.slice(0, end));
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  const out: string[] = [];
  for (const el of parsed as unknown[]) {
    if (typeof el !== "string") throw syntaxError(NOT_STRING_ARRAY, 'write every element as a "string"');
    out.push(el);
  }
  return { args: vals(out), json: true };
}

function parseStringsWhitespaceDelimited(rest: string): Parsed {
  if (rest === "") return NONE;
  return { args: vals(goSplit(RE_WHITESPACE, rest, -1)), json: false };
}

function parseMaybeJSON(rest: string): Parsed {
  if (rest === "") return NONE;
  return parseJSON(rest) ?? { args: [{ value: rest }], json: false };
}

function parseNameVal(rest: string, key: string, escape: string): Parsed {
  const words = parseWords(rest, escape);
  if (words.length === 0) return NONE;
  if (!(words[0] as string).includes("=")) {
    const parts = goSplit(RE_WHITESPACE, rest, 2);
    if (parts.length < 2) {
      throw new DockerfileError(ErrorCodes.args, `${key} must have two arguments`, {
        hint: `write ${key} name=value`,
      });
    }
    return { args: vals([parts[0] as string, parts[1] as string, ""]), json: false };
  }
  const out: string[] = [];
  for (const w of words) {
    const eq = w.indexOf("=");
    if (eq < 0) {
      throw syntaxError(
        `Syntax error - can't find = in ${JSON.stringify(w)}. Must be of the form: name=value`,
        `write ${key} name=value`,
      );
    }
    out.push(w.slice(0, eq), w.slice(eq + 1), "=");
  }
  return { args: vals(out), json: false };
}

function dispatchArgs(cmd: string, rest: string, escape: "\\" | "`"): Parsed {
  switch (cmd) {
    case "add":
    case "copy":
    case "volume":
      return parseJSON(rest) ?? parseStringsWhitespaceDelimited(rest);
    case "cmd":
    case "entrypoint":
    case "run":
    case "shell":
      return parseMaybeJSON(rest);
    case "arg":
      return { args: vals(parseWords(rest, escape)), json: false };
    case "env":
      return parseNameVal(rest, "ENV", escape);
    case "label":
      return parseNameVal(rest, "LABEL", escape);
    case "expose":
    case "from":
      return parseStringsWhitespaceDelimited(rest);
    case "healthcheck": {
      let sep = 0;
      while (sep < rest.length && !isGoSpace(rest[sep] as string)) sep++;
      let next = sep;
      while (next < rest.length && isGoSpace(rest[next] as string)) next++;
      if (sep === 0) return NONE;
      const cmdPart = parseMaybeJSON(rest.slice(next));
      return { args: [{ value: rest.slice(0, sep) }, ...cmdPart.args], json: cmdPart.json };
    }
    case "maintainer":
    case "stopsignal":
    case "user":
    case "workdir":
      return rest === "" ? NONE : { args: [{ value: rest }], json: false };
    case "onbuild": {
      if (rest === "") return NONE;
      const child = newNodeFromLine(rest, escape, []);
      return { args: [{ value: "", child }], json: false };
    }
    default:
      return { args: [{ value: "" }], json: false };
  }
}
