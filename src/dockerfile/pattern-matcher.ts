import { DockerfileError, ErrorCodes } from "./errors.js";
import { cleanPath } from "../common/clean-path.js";
import { BadPatternError, globMatch } from "../common/glob-match.js";
import { goTrimSpace } from "./go-quote.js";

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

function toJsRegExp(goSource: string): RegExp {
  // The generated sources only use constructs with the same meaning in JS, except that Go's `.`
  // excludes only \n.
  const js = goSource.replace(/(^|[^\\])\.\*/g, "$1[^\\n]*");
  try {
    return new RegExp(js, "u");
  } catch {
    return new RegExp(js);
  }
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
  private readonly re?: RegExp;
  private readonly invalid: boolean;

  constructor(pattern: string, exclusion: boolean) {
    const c = compilePattern(pattern);
    this.compiled = { pattern, exclusion, ...c };
    let invalid = false;
    if (c.regexp !== undefined) {
      try {
        this.re = toJsRegExp(c.regexp);
      } catch {
        invalid = true;
      }
    }
    this.invalid = invalid;
  }

  match(path: string): boolean {
    if (this.invalid)
      throw patternError(`syntax error in pattern ${JSON.stringify(this.compiled.pattern)}`, this.compiled.pattern);
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
        return this.re?.test(path) ?? false;
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
    const parent = parentDir(path);
    const parentDirs = parent.split("/");
    for (const pattern of this.patterns) {
      if (pattern.compiled.exclusion !== matched) continue;
      let match = pattern.match(path);
      if (!match && parent !== ".") {
        for (let i = 0; i < parentDirs.length; i++) {
          if (pattern.match(parentDirs.slice(0, i + 1).join("/"))) {
            match = true;
            break;
          }
        }
      }
      if (match) matched = !pattern.compiled.exclusion;
    }
    return matched;
  }
}
