import { EMPTY_ENV, lex } from "./shell-lexer.js";

/** A here-document attached to a RUN/COPY/ADD instruction. */
export interface Heredoc {
  /** The terminator word, quotes removed. */
  name: string;
  /** The file descriptor of `3<<EOF`; absent for the default (stdin). */
  fd?: number;
  /** False when any part of the word was quoted: the body is then used verbatim. */
  expand: boolean;
  /** True for `<<-`: leading tabs are stripped from every body line. */
  chomp: boolean;
  /** The body, each line with its newline; already chomped when `chomp`. */
  content: string;
}

const HEREDOC_WORD = /^(\d*)<<(-?)[\t\n\f\r ]*([^<]*)$/;

/**
 * Parses one word as a heredoc marker (`[fd]<<[-]WORD`), BuildKit `ParseHeredoc`: null when the word
 * is not a heredoc; throws DockerfileError when its quoting is broken. `content` is left empty.
 */
export function parseHeredocWord(src: string): Heredoc | null {
  const m = HEREDOC_WORD.exec(src);
  if (!m) return null;
  const fd = m[1] ? Number.parseInt(m[1], 10) : 0;
  const chomp = m[2] === "-";
  const rest = m[3] ?? "";
  if (rest.length === 0) return null;
  const words = lex(rest, EMPTY_ENV, { skipUnsetEnv: true }).words;
  if (words.length !== 1) return null;
  const raw = lex(rest, EMPTY_ENV, { skipUnsetEnv: true, rawQuotes: true }).words;
  const word = words[0] as string;
  const quotes = (s: string): number => s.split("'").length + s.split('"').length - 2;
  const expand = quotes(word) === quotes(raw[0] ?? "");
  const doc: Heredoc = { name: word, expand, chomp, content: "" };
  if (fd !== 0) doc.fd = fd;
  return doc;
}

/** The heredoc markers of an instruction line, in order (BuildKit `heredocsFromLine`). */
export function heredocsFromLine(line: string): Heredoc[] {
  let words: string[];
  try {
    words = lex(line, EMPTY_ENV, { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true }).words;
  } catch {
    // BuildKit ignores lexing errors of the whole line here.
    words = [];
  }
  const docs: Heredoc[] = [];
  for (let i = 0; i < words.length; i++) {
    let w = words[i] as string;
    // `<< EOF`: the marker and its word were split apart by the lexer.
    if (/^\d*<<-?$/.test(w) && i + 1 < words.length) w += " " + (words[++i] as string);
    const d = parseHeredocWord(w);
    if (d) docs.push(d);
  }
  return docs;
}

/** Removes leading tabs from every line (`<<-` heredocs). */
export function chompHeredocContent(src: string): string {
  return src.replace(/(^|\n)\t+/g, "$1");
}
