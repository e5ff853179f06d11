import { test } from "node:test";
import * as assert from "node:assert/strict";
import { envFromPairs, expandWord, expandWords, lex } from "./shell-lexer.js";
import { DockerfileError } from "./errors.js";
import { readConformance, readConformanceJson } from "./conformance-path.test-helper.js";

const goTrim = (s: string): string => s.trim();

test("envVarTest: every Linux line (A and U) of BuildKit's data file", () => {
  const env = envFromPairs([
    ["PWD", "/home"],
    ["SHELL", "bash"],
    ["KOREAN", "한국어"],
    ["NULL", ""],
  ]);
  const lines = readConformance("buildkit/frontend/dockerfile/shell/envVarTest").split("\n");
  let checked = 0;
  for (const raw of lines) {
    if (raw.startsWith("#")) continue;
    const line = goTrim(raw);
    if (line === "") continue;
    const parts = line.split("|");
    assert.equal(parts.length, 3, `malformed test line ${line}`);
    const [platform, input, expected] = parts.map(goTrim) as [string, string, string];
    // W lines only apply to Windows (case-insensitive env names); kiln builds Linux images only.
    if (platform === "W") continue;
    checked++;
    if (expected === "error") {
      assert.throws(() => expandWord(input, env), DockerfileError, `expected error for ${input}`);
    } else {
      assert.equal(expandWord(input, env).value, expected, `input ${input}`);
    }
  }
  assert.equal(checked, 228);
});

test("wordsTest: every line of BuildKit's data file (normal mode)", () => {
  const pairs: [string, string][] = [];
  let checked = 0;
  for (const raw of readConformance("buildkit/frontend/dockerfile/shell/wordsTest").split("\n")) {
    if (raw.startsWith("#")) continue;
    if (raw.startsWith("ENV ")) {
      const entry = raw.slice(4).replace(/^ +/, "");
      const eq = entry.indexOf("=");
      pairs.push([entry.slice(0, eq), entry.slice(eq + 1)]);
      continue;
    }
    if (raw === "") continue; // trailing newline of the file
    const parts = raw.split("|");
    assert.equal(parts.length, 2);
    const input = goTrim(parts[0] as string);
    const expected = (parts[1] as string).replace(/^ +/, "").split(",");
    let got: string[];
    try {
      got = expandWords(input, envFromPairs(pairs)).values;
    } catch (e) {
      assert.ok(e instanceof DockerfileError);
      got = ["error"];
    }
    assert.deepEqual(got, expected, `input ${input}`);
    checked++;
  }
  assert.equal(checked, 24);
});

interface WordsCase {
  input: string;
  env: string[];
  actualNormal: string[];
  actualRawQuotesSkipUnsetEnv: string[];
}
interface MatchCase {
  input: string;
  env: Record<string, string>;
  expected: string | null;
  expectError: boolean;
  matched: string[];
  unmatched: string[];
}
interface MandatoryCase {
  input: string;
  env: string[];
  expected: string | null;
  expectErrorContains?: string;
}
interface ShellCases {
  wordsTest: WordsCase[];
  processWordWithMatches: MatchCase[];
  mandatoryEnvVars: MandatoryCase[];
}
const cases = readConformanceJson<ShellCases>("buildkit/shell-cases.json");
const envOf = (list: string[]) =>
  envFromPairs(list.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)] as [string, string]));

test("wordsTest in raw-quotes + skip-unset mode matches what BuildKit produced", () => {
  for (const c of cases.wordsTest) {
    let got: string[];
    try {
      got = lex(c.input, envOf(c.env), { rawQuotes: true, skipUnsetEnv: true }).words;
    } catch {
      got = ["error"];
    }
    const want = c.actualRawQuotesSkipUnsetEnv.length === 0 ? [] : c.actualRawQuotesSkipUnsetEnv;
    assert.deepEqual(got, want, c.input);
  }
});

test("processWordWithMatches: results and matched/unmatched variable names", () => {
  assert.equal(cases.processWordWithMatches.length, 47);
  for (const c of cases.processWordWithMatches) {
    const env = envFromPairs(Object.entries(c.env));
    if (c.expectError) {
      assert.throws(() => lex(c.input, env), DockerfileError, c.input);
      continue;
    }
    const r = lex(c.input, env);
    assert.equal(r.word, c.expected, c.input);
    assert.deepEqual([...r.matched].sort(), [...c.matched].sort(), `matched ${c.input}`);
    assert.deepEqual([...r.unmatched].sort(), [...c.unmatched].sort(), `unmatched ${c.input}`);
  }
});

test("mandatory variables: ${VAR:?msg} and ${VAR?msg}", () => {
  for (const c of cases.mandatoryEnvVars) {
    if (c.expected === null) {
      assert.throws(
        () => expandWord(c.input, envOf(c.env)),
        (e: unknown) => e instanceof DockerfileError && e.message.includes(c.expectErrorContains ?? "?"),
        c.input,
      );
    } else {
      assert.equal(expandWord(c.input, envOf(c.env)).value, c.expected);
    }
  }
});

test("backtick escape token escapes like backslash", () => {
  const env = envFromPairs([["A", "x"]]);
  assert.equal(expandWord("`$A$A", env, "`").value, "$Ax");
  assert.equal(expandWord("c:\\dir", env, "`").value, "c:\\dir");
});
