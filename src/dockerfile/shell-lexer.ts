import { DockerfileError, ErrorCodes } from "./errors.js";
import { isGoSpace } from "./go-quote.js";

/**
 * The longest value (in UTF-16 code units) one expansion may produce. BuildKit has no explicit cap,
 * but without one a few `ENV a=$a$a` lines double a value into gigabytes; real builds never need
 * more than a few hundred KiB (Linux refuses a single environment string over 128 KiB anyway).
 */
export const MAX_EXPANSION_LENGTH = 1024 * 1024;

/** A run of Go `unicode.IsSpace` characters, captured so that split keeps it. */
const GO_SPACE_RUN = /([\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+)/u;

/** Read access to the variables visible to an expansion. */
export interface EnvLookup {
  get(name: string): string | undefined;
  keys(): Iterable<string>;
}

/** An {@link EnvLookup} over `name, value` pairs; a later pair wins over an earlier one with the same name. */
export function envFromPairs(pairs: Iterable<[string, string]>): EnvLookup {
  const map = new Map<string, string>(pairs);
  return { get: (name) => map.get(name), keys: () => map.keys() };
}

/** Options of the BuildKit shell lexer (`shell.Lex`). */
export interface LexOptions {
  escape?: "\\" | "`";
  /** Keep quote characters in the output. */
  rawQuotes?: boolean;
  /** Keep escape characters in the output. */
  rawEscapes?: boolean;
  /** Leave references to unset variables as written. */
  skipUnsetEnv?: boolean;
  /** Do not treat quotes specially. */
  skipProcessQuotes?: boolean;
}

/** The outcome of one lexer run. */
export interface LexResult {
  /** The whole input as one word (ProcessWord). */
  word: string;
  /** The input split into words outside quotes (ProcessWords). */
  words: string[];
  /** Variable names looked up and found. */
  matched: string[];
  /** Variable names looked up and not found. */
  unmatched: string[];
}

const EOF = -1;

function lexError(message: string): DockerfileError {
  return new DockerfileError(ErrorCodes.expansion, message);
}

/** Throws unless a value of `length` code units is within {@link MAX_EXPANSION_LENGTH}. */
function checkLength(length: number): void {
  if (length > MAX_EXPANSION_LENGTH) {
    throw lexError(`expanded value is too long (more than ${MAX_EXPANSION_LENGTH} characters)`);
  }
}

/** `a + b`, refusing a result longer than {@link MAX_EXPANSION_LENGTH}. */
function concat(a: string, b: string): string {
  checkLength(a.length + b.length);
  return a + b;
}

class Words {
  word = "";
  words: string[] = [];
  inWord = false;
  addChar(ch: string): void {
    if (isGoSpace(ch)) {
      if (this.inWord && this.word.length !== 0) {
        this.words.push(this.word);
        this.word = "";
        this.inWord = false;
      }
    } else {
      this.addRawChar(ch);
    }
  }
  addRawChar(ch: string): void {
    this.word += ch;
    this.inWord = true;
  }
  /** Same as addChar for each character of `s`, but appends each run of non-spaces in one go. */
  addString(s: string): void {
    const parts = s.split(GO_SPACE_RUN);
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as string;
      if (i % 2 === 1) this.addChar(" ");
      else if (part !== "") this.addRawString(part);
    }
  }
  addRawString(s: string): void {
    this.word += s;
    this.inWord = true;
  }
  getWords(): string[] {
    if (this.word.length > 0) {
      this.words.push(this.word);
      this.word = "";
      this.inWord = false;
    }
    return this.words;
  }
}

const isLetter = (ch: string): boolean => /^\p{L}$/u.test(ch);
const isDigit = (ch: string): boolean => /^\p{Nd}$/u.test(ch);
const isSpecialParam = (ch: string): boolean => "@*#?-$!0".includes(ch);

class ShellWord {
  private readonly chars: string[];
  private pos = 0;
  private rawEscapes: boolean;
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();

  constructor(
    input: string,
    private readonly env: EnvLookup,
    private readonly opts: Required<LexOptions>,
  ) {
    this.chars = Array.from(input);
    this.rawEscapes = opts.rawEscapes;
  }

  private peek(): string | typeof EOF {
    return this.pos < this.chars.length ? (this.chars[this.pos] as string) : EOF;
  }
  private next(): string | typeof EOF {
    return this.pos < this.chars.length ? (this.chars[this.pos++] as string) : EOF;
  }

  run(): { word: string; words: string[] } {
    return this.processStopOn(EOF, this.rawEscapes);
  }

  private processStopOn(stop: string | typeof EOF, rawEscapes: boolean): { word: string; words: string[] } {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      let result = "";
      const words = new Words();
      const quotes = !this.opts.skipProcessQuotes;
      for (let ch = this.peek(); ch !== EOF; ch = this.peek()) {
        if (stop !== EOF && ch === stop) {
          this.next();
          return { word: result, words: words.getWords() };
        }
        if (ch === "$") {
          const tmp = this.processDollar();
          result = concat(result, tmp);
          words.addString(tmp);
        } else if (quotes && ch === "'") {
          const tmp = this.processSingleQuote();
          result = concat(result, tmp);
          words.addRawString(tmp);
        } else if (quotes && ch === '"') {
          const tmp = this.processDoubleQuote();
          result = concat(result, tmp);
          words.addRawString(tmp);
        } else {
          let c = this.next() as string;
          if (c === this.opts.escape) {
            if (this.rawEscapes) {
              words.addRawChar(c);
              result += c;
            }
            const n = this.next();
            if (n === EOF) break;
            c = n;
            words.addRawChar(c);
          } else {
            words.addChar(c);
          }
          result += c;
        }
      }
      if (stop !== EOF) throw lexError(`unexpected end of statement while looking for matching ${stop}`);
      return { word: result, words: words.getWords() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  private processSingleQuote(): string {
    let result = "";
    const open = this.next() as string;
    if (this.opts.rawQuotes) result += open;
    for (;;) {
      const ch = this.next();
      if (ch === EOF) throw lexError("unexpected end of statement while looking for matching single-quote");
      if (ch === "'") {
        if (this.opts.rawQuotes) result += ch;
        return result;
      }
      result += ch;
    }
  }

  private processDoubleQuote(): string {
    let result = "";
    const open = this.next() as string;
    if (this.opts.rawQuotes) result += open;
    for (;;) {
      const p = this.peek();
      if (p === EOF) throw lexError("unexpected end of statement while looking for matching double-quote");
      if (p === '"') {
        this.next();
        if (this.opts.rawQuotes) result += p;
        return result;
      }
      if (p === "$") {
        result = concat(result, this.processDollar());
        continue;
      }
      let ch = this.next() as string;
      if (ch === this.opts.escape) {
        const n = this.peek();
        if (n === EOF) continue; // a trailing escape inside an unterminated quote is dropped
        if (n === '"' || n === "$" || n === this.opts.escape) {
          if (this.rawEscapes) result += ch;
          ch = this.next() as string;
        }
      }
      result += ch;
    }
  }

  private getEnv(name: string): { value: string; set: boolean } {
    const v = this.env.get(name);
    if (v !== undefined) {
      this.matched.add(name);
      return { value: v, set: true };
    }
    this.unmatched.add(name);
    return { value: "", set: false };
  }

  private processName(): string {
    let name = "";
    for (let ch = this.peek(); ch !== EOF; ch = this.peek()) {
      if (name.length === 0 && isDigit(ch)) {
        for (let d = this.peek(); d !== EOF && isDigit(d); d = this.peek()) name += this.next() as string;
        return name;
      }
      if (name.length === 0 && isSpecialParam(ch)) {
        return this.next() as string;
      }
      if (!isLetter(ch) && !isDigit(ch) && ch !== "_") break;
      name += this.next() as string;
    }
    return name;
  }

  private processDollar(): string {
    this.next();
    if (this.peek() !== "{") {
      const name = this.processName();
      if (name === "") return "$";
      const { value, set } = this.getEnv(name);
      if (!set && this.opts.skipUnsetEnv) return "$" + name;
      return value;
    }
    this.next();
    const first = this.peek();
    if (first === EOF) throw lexError("syntax error: missing '}'");
    if (first === "{" || first === "}" || first === ":") throw lexError("syntax error: bad substitution");
    const name = this.processName();
    let ch = this.next();
    let chs = ch === EOF ? "" : ch;
    let nullIsUnset = false;
    switch (ch) {
      case "}": {
        const { value, set } = this.getEnv(name);
        if (!set && this.opts.skipUnsetEnv) return "${" + name + "}";
        return value;
      }
      case ":":
      case "+":
      case "-":
      case "?":
      case "#":
      case "%": {
        if (ch === ":") {
          nullIsUnset = true;
          ch = this.next();
          chs += ch === EOF ? "" : ch;
        }
        const rawEscapes = ch === "#" || ch === "%";
        if (nullIsUnset && rawEscapes) throw lexError(`unsupported modifier (${chs}) in substitution`);
        let word: string;
        try {
          word = this.processStopOn("}", rawEscapes).word;
        } catch (e) {
          if (this.peek() === EOF) throw lexError("syntax error: missing '}'");
          throw e;
        }
        const { value, set } = this.getEnv(name);
        if (this.opts.skipUnsetEnv && !set) return "${" + name + chs + word + "}";
        switch (ch) {
          case "-":
            return !set || (nullIsUnset && value === "") ? word : value;
          case "+":
            return !set || (nullIsUnset && value === "") ? "" : word;
          case "?":
            if (!set) throw lexError(`${name}: ${word !== "" ? word : "is not allowed to be unset"}`);
            if (nullIsUnset && value === "")
              throw lexError(`${name}: ${word !== "" ? word : "is not allowed to be empty"}`);
            return value;
          case "%":
          case "#": {
            let greedy = false;
            if (word.length > 0 && word[0] === ch) {
              greedy = true;
              word = word.slice(1);
            }
            return ch === "%" ? trimSuffix(word, value, greedy) : trimPrefix(word, value, greedy);
          }
          default:
            throw lexError(`unsupported modifier (${chs}) in substitution`);
        }
      }
      case "/": {
        const replaceAll = this.peek() === "/";
        if (replaceAll) this.next();
        let pattern: string;
        try {
          pattern = this.processStopOn("/", true).word;
        } catch (e) {
          if (this.peek() === EOF) throw lexError("syntax error: missing '/' in ${}");
          throw e;
        }
        let replacement: string;
        try {
          replacement = this.processStopOn("}", true).word;
        } catch (e) {
          if (this.peek() === EOF) throw lexError("syntax error: missing '}'");
          throw e;
        }
        const { value, set } = this.getEnv(name);
        if (this.opts.skipUnsetEnv && !set) return "${" + name + "/" + pattern + "/" + replacement + "}";
        const re = shellPatternToRegex(pattern, true, false, replaceAll);
        if (replaceAll) return replaceAllCapped(value, re, replacement);
        const m = re.exec(value);
        if (!m) return value;
        return concat(value.slice(0, m.index) + replacement, value.slice(m.index + m[0].length));
      }
      default:
        throw lexError(`unsupported modifier (${chs}) in substitution`);
    }
  }
}

/**
 * `value.replace(re, replacement)` for a global `re`, refusing to build a result longer than
 * {@link MAX_EXPANSION_LENGTH} (`${a//?/$a}` would otherwise square the length of `a`).
 */
function replaceAllCapped(value: string, re: RegExp, replacement: string): string {
  let growth = 0;
  return value.replace(re, (m: string, offset: number) => {
    growth += replacement.length - m.length;
    // The output so far: the input up to the end of this match, with every match replaced.
    checkLength(offset + m.length + growth);
    return replacement;
  });
}

/** Converts a shell pattern (`*`, `?`, `\` escapes of `*?\`) into a regular expression, like BuildKit. */
function shellPatternToRegex(pattern: string, greedy: boolean, anchored: boolean, global = false): RegExp {
  const chars = Array.from(pattern);
  let out = anchored ? "^" : "";
  const star = greedy ? "[^\\n]*" : "[^\\n]*?";
  for (let i = 0; i < chars.length; i++) {
    let tok = chars[i] as string;
    switch (tok) {
      case "*":
        out += star;
        continue;
      case "?":
        out += "[^\\n]";
        continue;
      case "\\": {
        const n = chars[i + 1];
        if (n === "}" || n === "/") continue;
        out += "\\";
        i++;
        tok = n ?? "";
        if (tok !== "*" && tok !== "?" && tok !== "\\") {
          throw lexError(`invalid pattern (${pattern}) in substitution: invalid escape '\\${tok}'`);
        }
        break;
      }
      case "[":
      case "]":
      case "{":
      case "}":
      case ".":
      case "+":
      case "(":
      case ")":
      case "|":
      case "^":
      case "$":
        out += "\\";
        break;
    }
    out += tok;
  }
  return new RegExp(out, global ? "gu" : "u");
}

function reversePattern(pattern: string): string {
  const runes = Array.from(pattern);
  const out: string[] = new Array<string>(runes.length);
  const last = runes.length - 1;
  for (let i = 0; i <= last;) {
    const tok = runes[i] as string;
    const o = last - i;
    if (tok === "\\" && i !== last) {
      out[o - 1] = tok;
      out[o] = runes[i + 1] as string;
      i += 2;
    } else {
      out[o] = tok;
      i++;
    }
  }
  return out.join("");
}

const reverseString = (s: string): string => Array.from(s).reverse().join("");

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const m = shellPatternToRegex(pattern, greedy, true).exec(value);
  return m ? value.slice(m.index + m[0].length) : value;
}

function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  return reverseString(trimPrefix(reversePattern(pattern), reverseString(value), greedy));
}

/**
 * Runs BuildKit's shell lexer over `input`: quote removal, escapes and variable substitution.
 * Throws {@link DockerfileError} (code DOCKERFILE_EXPANSION, no location) on malformed input.
 */
export function lex(input: string, env: EnvLookup, opts: LexOptions = {}): LexResult {
  const full: Required<LexOptions> = {
    escape: opts.escape ?? "\\",
    rawQuotes: opts.rawQuotes ?? false,
    rawEscapes: opts.rawEscapes ?? false,
    skipUnsetEnv: opts.skipUnsetEnv ?? false,
    skipProcessQuotes: opts.skipProcessQuotes ?? false,
  };
  const sw = new ShellWord(input, env, full);
  try {
    const { word, words } = sw.run();
    return { word, words, matched: [...sw.matched], unmatched: [...sw.unmatched] };
  } catch (e) {
    if (e instanceof DockerfileError) {
      throw new DockerfileError(e.code, `failed to process ${JSON.stringify(input)}: ${e.detail}`);
    }
    throw e;
  }
}

/** Expands `word` as one word (BuildKit ProcessWord): quotes removed, variables substituted, spaces kept. */
export function expandWord(
  word: string,
  env: EnvLookup,
  escape: "\\" | "`" = "\\",
): { value: string; unmatched: string[] } {
  const r = lex(word, env, { escape });
  return { value: r.word, unmatched: r.unmatched };
}

/** Expands `word` and splits the result on unquoted whitespace (BuildKit ProcessWords). */
export function expandWords(
  word: string,
  env: EnvLookup,
  escape: "\\" | "`" = "\\",
): { values: string[]; unmatched: string[] } {
  const r = lex(word, env, { escape });
  return { values: r.words, unmatched: r.unmatched };
}

/** An environment with no variables. */
export const EMPTY_ENV: EnvLookup = Object.freeze({ get: () => undefined, keys: () => [] });
