import { DockerfileError, ErrorCodes } from "./errors.js";
import { cleanPath } from "../common/clean-path.js";
import { BadPatternError, globMatch } from "../common/glob-match.js";
import { goTrimSpace } from "./go-quote.js";
import { compileNfa, runNfa, toJsRegExp, toJsSource, type JsRegExp, type NfaState } from "./pattern-nfa.js";

type MatchType = "exact" | "prefix" | "suffix" | "regexp";

/** One compiled .dockerignore pattern (moby patternmatcher `Pattern`). */
export interface CompiledPattern {
  /** The cleaned pattern without its `!`. */
  pattern: string;
  exclusion: boolean;
  matchType: MatchType;
  /** Go-syntax regular expression source (only for `regexp`). */
  regexp?: string;
}

const SHOULD_ESCAPE = ".+()|{}$";

/**
 * The longest .dockerignore pattern accepted (after cleaning). moby has no limit, but no path can
 * be longer than PATH_MAX (4096) and matching costs grow with the pattern length.
 */
export const MAX_PATTERN_LENGTH = 4096;

/** Compiles a cleaned pattern the way moby patternmatcher does (slash separator). */
export function compilePattern(pattern: string): { matchType: MatchType; regexp?: string } {
  let re = "^";
  let matchType: MatchType = "exact";
  const chars = Array.from(pattern);
  for (let i = 0, pos = 0; pos < chars.length; i++) {
    const ch = chars[pos++] as string;
    if (ch === "*") {
      if (chars[pos] === "*") {
        pos++;
        if (chars[pos] === "/") pos++;
        if (pos >= chars.length) {
          if (matchType === "exact") matchType = "prefix";
          else {
            re += ".*";
            matchType = "regexp";
          }
        } else {
          re += "(.*/)?";
          matchType = "regexp";
        }
        if (i === 0) matchType = "suffix";
      } else {
        re += "[^/]*";
        matchType = "regexp";
      }
    } else if (ch === "?") {
      re += "[^/]";
      matchType = "regexp";
    } else if (SHOULD_ESCAPE.includes(ch)) {
      re += "\\" + ch;
    } else if (ch === "\\") {
      if (pos < chars.length) {
        re += "\\" + (chars[pos++] as string);
        matchType = "regexp";
      } else {
        re += "\\";
      }
    } else if (ch === "[" || ch === "]") {
      re += ch;
      matchType = "regexp";
    } else {
      re += ch;
    }
  }
  if (matchType !== "regexp") return { matchType };
  return { matchType, regexp: re + "$" };
}

/**
 * A path being matched, with the views patterns need computed once per path: its units in either
 * RegExp mode and its parent's prefixes.
 */
class Subject {
  private codePoints?: string[];
  private codeUnits?: string[];
  private prefixList?: string[];

  constructor(readonly text: string) {}

  /** The text split the way a RegExp in the given mode reads it. */
  units(unicode: boolean): string[] {
    if (unicode) return (this.codePoints ??= Array.from(this.text));
    return (this.codeUnits ??= this.text.split(""));
  }

  /** moby's parent candidates: the text up to each `/`, and the whole text. */
  prefixes(): string[] {
    if (this.prefixList) return this.prefixList;
    const list: string[] = [];
    for (let i = this.text.indexOf("/"); i >= 0; i = this.text.indexOf("/", i + 1)) list.push(this.text.slice(0, i));
    list.push(this.text);
    return (this.prefixList = list);
  }
}

/** Unbounded repetitions (`*` not escaped) in a regular expression from {@link compilePattern}. */
function repetitions(source: string): number {
  let n = 0;
  for (let i = 0; i < source.length; i++) {
    if (source[i] === "\\") i++;
    else if (source[i] === "*") n++;
  }
  return n;
}

function patternError(message: string, pattern: string): DockerfileError {
  return new DockerfileError(ErrorCodes.dockerignore, message, {
    file: ".dockerignore",
    lineText: pattern,
    hint: "fix or remove this pattern in .dockerignore",
  });
}

class Pattern {
  readonly compiled: CompiledPattern;
  private readonly re?: JsRegExp;
  private readonly nfa?: NfaState[];
  private readonly invalid: boolean;
  /** More than two repetitions with a construct the automaton does not model: refused, never backtracked. */
  private readonly tooComplex: boolean;

  constructor(pattern: string, exclusion: boolean) {
    const c = compilePattern(pattern);
    this.compiled = { pattern, exclusion, ...c };
    let invalid = false;
    let tooComplex = false;
    if (c.regexp !== undefined) {
      try {
        this.re = toJsRegExp(c.regexp);
        // V8's RegExp is about twice as fast as the automaton, and with at most two unbounded
        // repetitions it cannot backtrack worse than quadratically (in a path of at most 4096
        // characters); more (many `**`, or `*` runs in one name) take the automaton.
        if (repetitions(c.regexp) > 2) {
          this.nfa = compileNfa(toJsSource(c.regexp), this.re.unicode);
          tooComplex = this.nfa === undefined;
        }
      } catch {
        invalid = true;
      }
    }
    this.invalid = invalid;
    this.tooComplex = tooComplex;
  }

  /** Whether the pattern matches the whole path. */
  match(path: Subject): boolean {
    this.usable();
    if (this.re && this.nfa) {
      const units = path.units(this.re.unicode);
      return runNfa(this.nfa, units, (k) => k === units.length);
    }
    return this.matchText(path.text);
  }

  /** Throws the pattern's error when it cannot be matched. */
  private usable(): void {
    if (this.invalid)
      throw patternError(`syntax error in pattern ${JSON.stringify(this.compiled.pattern)}`, this.compiled.pattern);
    if (this.tooComplex) {
      // Only patterns with more than two `*` and a `\` before a letter or digit, or a [...] class the
      // automaton does not read: kiln would match them by backtracking, exponential in the number of `*`.
      throw patternError(
        `pattern ${JSON.stringify(this.compiled.pattern)} combines more than two * with an escaped letter or digit or an unusual [...] class, which kiln could only match by backtracking; simplify it`,
        this.compiled.pattern,
      );
    }
  }

  /** Whether the pattern matches one of the prefixes of `parent` that moby tries (one pass when it can). */
  matchParent(parent: Subject): boolean {
    this.usable();
    if (this.re && this.nfa) {
      const units = parent.units(this.re.unicode);
      return runNfa(this.nfa, units, (k) => k === units.length || units[k] === "/");
    }
    return parent.prefixes().some((p) => this.matchText(p));
  }

  private matchText(path: string): boolean {
    const p = this.compiled.pattern;
    switch (this.compiled.matchType) {
      case "exact":
        return path === p;
      case "prefix":
        return path.startsWith(p.slice(0, -2));
      case "suffix": {
        const suffix = p.slice(2);
        if (path.endsWith(suffix)) return true;
        return suffix[0] === "/" && path === suffix.slice(1);
      }
      case "regexp":
        return this.re?.re.test(path) ?? false;
    }
  }
}

const parentDir = (p: string): string => {
  const i = p.lastIndexOf("/");
  if (i < 0) return ".";
  return cleanPath(p.slice(0, i) || "/");
};

/**
 * .dockerignore matching with moby patternmatcher semantics (`MatchesOrParentMatches`): a pattern
 * matches a path or any of its parent directories, and later `!` patterns re-include.
 * The constructor throws DockerfileError (code DOCKERIGNORE_PATTERN) for a malformed pattern.
 */
export class PatternMatcher {
  /** Whether any `!` pattern exists (a walker must then descend into excluded directories). */
  readonly exclusions: boolean;
  private readonly patterns: Pattern[];

  constructor(patterns: string[]) {
    const list: Pattern[] = [];
    let exclusions = false;
    for (const raw of patterns) {
      let p = goTrimSpace(raw);
      if (p === "") continue;
      p = cleanPath(p);
      let exclusion = false;
      if (p[0] === "!") {
        if (p.length === 1) throw patternError('illegal exclusion pattern: "!"', raw);
        exclusion = true;
        p = p.slice(1);
        exclusions = true;
      }
      if (p.length > MAX_PATTERN_LENGTH) {
        throw patternError(
          `pattern too long (${p.length} characters, the limit is ${MAX_PATTERN_LENGTH}): ${JSON.stringify(p.slice(0, 40) + "…")}`,
          raw,
        );
      }
      try {
        globMatch(p, ".");
      } catch (e) {
        if (e instanceof BadPatternError) throw patternError(`syntax error in pattern ${JSON.stringify(p)}`, raw);
        throw e;
      }
      list.push(new Pattern(p, exclusion));
    }
    this.patterns = list;
    this.exclusions = exclusions;
  }

  /** The compiled patterns, in order. */
  get compiled(): CompiledPattern[] {
    return this.patterns.map((p) => ({ ...p.compiled }));
  }

  /** True when `path` (slash-separated, relative to the context) is excluded. */
  matches(path: string): boolean {
    let matched = false;
    const subject = new Subject(path);
    const parentPath = parentDir(path);
    const parent = parentPath === "." ? undefined : new Subject(parentPath);
    for (const pattern of this.patterns) {
      if (pattern.compiled.exclusion !== matched) continue;
      const match = pattern.match(subject) || (parent !== undefined && pattern.matchParent(parent));
      if (match) matched = !pattern.compiled.exclusion;
    }
    return matched;
  }
}
