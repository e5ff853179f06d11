import { test } from "node:test";
import * as assert from "node:assert/strict";
import { parseDockerignore } from "./dockerignore.js";
import { MAX_PATTERN_LENGTH, PatternMatcher, compilePattern } from "./pattern-matcher.js";
import { BadPatternError, globMatch } from "../common/glob-match.js";
import { DockerfileError } from "./errors.js";
import { evalInChild } from "../common/in-child.test-helper.js";
import { readConformanceJson } from "./conformance-path.test-helper.js";

interface Cases {
  matchCases: { cases: { patterns: string[]; path: string; expected: boolean }[] };
  filepathMatchCases: { cases: { pattern: string; path: string; expected: boolean; expectedError?: string }[] };
  compileCases: { cases: { pattern: string; matchType: string; regexp?: string }[] };
  standaloneCases: { cases: { test: string; patterns: string[]; path: string; expected: boolean | "error" }[] };
  newPatternCases: {
    cases: {
      test: string;
      patterns: string[];
      expectNewError: boolean;
      actualCleanedPatterns: string[] | null;
      actualExclusions: boolean;
      expectMatchError?: boolean;
    }[];
  };
  ignorefileReadAll: { content: string; expected: string[] };
  kanikoFileContextCases: {
    cases: { name: string; ignoreFileContent: string; excluded: string[]; included: string[] }[];
  };
  buildkitIntegrationCases: {
    cases: { name: string; dockerignore?: string; expectPresent?: Record<string, string>; expectAbsent?: string[] }[];
  };
}
const cases = readConformanceJson<Cases>("dockerignore-cases.json");

test("matchCases: MatchesOrParentMatches for all 72 cases (Linux)", () => {
  assert.equal(cases.matchCases.cases.length, 72);
  for (const c of cases.matchCases.cases) {
    assert.equal(new PatternMatcher(c.patterns).matches(c.path), c.expected, `${JSON.stringify(c.patterns)} ${c.path}`);
  }
});

test("filepathMatchCases: Go filepath.Match table through the matcher and globMatch", () => {
  assert.equal(cases.filepathMatchCases.cases.length, 54);
  for (const c of cases.filepathMatchCases.cases) {
    const name = `${c.pattern} ${c.path}`;
    if (c.expectedError) {
      assert.throws(() => new PatternMatcher([c.pattern]).matches(c.path), DockerfileError, name);
      assert.throws(() => globMatch(c.pattern, c.path), BadPatternError, name);
    } else {
      assert.equal(new PatternMatcher([c.pattern]).matches(c.path), c.expected, name);
      // The table's expectations include parent-directory matching; plain filepath.Match agrees
      // whenever the path has no parent.
      if (!c.path.includes("/")) assert.equal(globMatch(c.pattern, c.path), c.expected, name);
    }
  }
});

test("compileCases: match type and generated regexp", () => {
  for (const c of cases.compileCases.cases) {
    const r = compilePattern(c.pattern);
    assert.equal(r.matchType, c.matchType, c.pattern);
    if (c.regexp !== undefined) assert.equal(r.regexp, c.regexp, c.pattern);
  }
});

test("standaloneCases", () => {
  for (const c of cases.standaloneCases.cases) {
    if (c.expected === "error") {
      assert.throws(() => new PatternMatcher(c.patterns).matches(c.path), DockerfileError, c.test);
    } else {
      assert.equal(new PatternMatcher(c.patterns).matches(c.path), c.expected, c.test);
    }
  }
});

test("newPatternCases: cleaning, exclusions flag, errors", () => {
  for (const c of cases.newPatternCases.cases) {
    if (c.expectNewError) {
      assert.throws(() => new PatternMatcher(c.patterns), DockerfileError, c.test);
      continue;
    }
    const pm = new PatternMatcher(c.patterns);
    assert.equal(pm.exclusions, c.actualExclusions, c.test);
    if (c.actualCleanedPatterns) {
      assert.deepEqual(
        pm.compiled.map((p) => (p.exclusion ? "!" : "") + p.pattern),
        c.actualCleanedPatterns,
        c.test,
      );
    }
    if (c.expectMatchError) {
      assert.throws(() => pm.matches("a"), DockerfileError, c.test);
      assert.throws(() => pm.matches("a"), DockerfileError, `${c.test} (repeated call)`);
    }
  }
});

test("ignorefile ReadAll", () => {
  assert.deepEqual(parseDockerignore(cases.ignorefileReadAll.content), cases.ignorefileReadAll.expected);
  assert.deepEqual(parseDockerignore("\uFEFFa\r\n b \r\n#c\n  #d\n"), ["a", "b", "#d"]);
});

test("kaniko per-Dockerfile ignore files and BuildKit integration expectations", () => {
  for (const c of cases.kanikoFileContextCases.cases) {
    const pm = new PatternMatcher(parseDockerignore(c.ignoreFileContent));
    for (const p of c.excluded) assert.equal(pm.matches(p), true, `${c.name}: ${p}`);
    for (const p of c.included) assert.equal(pm.matches(p), false, `${c.name}: ${p}`);
  }
  for (const c of cases.buildkitIntegrationCases.cases) {
    if (c.dockerignore === undefined) continue; // testDockerignoreOverride needs a real build (busybox)
    const patterns = parseDockerignore(c.dockerignore);
    if (!c.expectPresent) {
      assert.throws(() => new PatternMatcher(patterns), DockerfileError, c.name);
      continue;
    }
    const pm = new PatternMatcher(patterns);
    for (const p of Object.keys(c.expectPresent)) assert.equal(pm.matches(p), false, `${c.name}: ${p}`);
    for (const p of c.expectAbsent ?? []) assert.equal(pm.matches(p), true, `${c.name}: ${p}`);
  }
});

test("many ** against a deep path answer at once (no exponential backtracking)", () => {
  const pattern = "a/**/".repeat(14) + "zz";
  const pm = new PatternMatcher([pattern]);
  // In a child process killed after 20 s (the backtracking RegExp took about 10 s here with 14 `**`,
  // 2.5 times more per extra one: 18 would take minutes).
  const url = new URL("./pattern-matcher.js", import.meta.url);
  const deep = `new m.PatternMatcher(["a/**/".repeat(18) + "zz"]).matches("a/".repeat(30) + "b")`;
  assert.equal(evalInChild(url, deep), false);
  assert.equal(pm.matches("a/".repeat(30) + "b"), false);
  assert.equal(pm.matches("a/".repeat(32) + "zz"), true);
  // A parent directory matching counts too, and `!` patterns still re-include.
  assert.equal(pm.matches("a/".repeat(32) + "zz/deeper/file"), true);
  const reinclude = new PatternMatcher([pattern, "!" + "a/**/".repeat(14) + "zz/keep"]);
  assert.equal(reinclude.matches("a/".repeat(32) + "zz/keep"), false);
  assert.equal(reinclude.matches("a/".repeat(32) + "zz/other"), true);
  // Runs of `*` inside one directory name are linear too (a backtracking RegExp is O(n^k) there).
  const stars = `new m.PatternMatcher(["*a".repeat(6) + "b"]).matches("a".repeat(400))`;
  assert.equal(evalInChild(url, stars), false);
});

test("a pattern the automaton cannot read and that would backtrack is refused, not matched for minutes", () => {
  const url = new URL("./pattern-matcher.js", import.meta.url);
  const outcome = `(() => {
    try { return String(new m.PatternMatcher(["**/".repeat(14) + "\\\\q"]).matches("a/".repeat(30) + "b")); }
    catch (e) { return e.message; }
  })()`;
  assert.match(String(evalInChild(url, outcome)), /more than two \* with an escaped letter or digit .*simplify it/);
  // Two repetitions with the same escape still match (V8's RegExp, at worst quadratic).
  assert.equal(new PatternMatcher(["**/x\\q"]).matches("a/b/xq"), true);
});

test("a .dockerignore pattern over MAX_PATTERN_LENGTH is a clear error", () => {
  assert.throws(
    () => new PatternMatcher(["a".repeat(MAX_PATTERN_LENGTH + 1)]),
    (e: unknown) =>
      e instanceof DockerfileError && /^\.dockerignore: pattern too long \(4097 characters/.test(e.message),
  );
  assert.equal(new PatternMatcher(["*" + "a".repeat(MAX_PATTERN_LENGTH - 1)]).matches("a".repeat(100)), false);
});
