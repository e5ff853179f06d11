import { test } from "node:test";
import * as assert from "node:assert/strict";
import { chompHeredocContent, heredocsFromLine, parseHeredocWord } from "./heredoc.js";
import { DockerfileError } from "./errors.js";
import { readConformanceJson } from "./conformance-path.test-helper.js";

interface Cases {
  heredocsFromLine: { line: string; expectedNames: string[] | null }[];
  parseHeredocHelpers: { src: string; kind: string; actualName: string | null }[];
  chomp: { input: string; expected: string };
}
const cases = readConformanceJson<Cases>("buildkit/parser-cases.json");

test("parseHeredocWord: valid, invalid and non-heredoc words", () => {
  assert.equal(cases.parseHeredocHelpers.length, 20);
  for (const c of cases.parseHeredocHelpers) {
    if (c.kind.startsWith("invalid")) {
      assert.throws(() => parseHeredocWord(c.src), DockerfileError, c.src);
    } else {
      assert.equal(parseHeredocWord(c.src)?.name ?? null, c.actualName, c.src);
    }
  }
});

test("heredocsFromLine: names found on an instruction line", () => {
  for (const c of cases.heredocsFromLine) {
    assert.deepEqual(
      heredocsFromLine(c.line).map((h) => h.name),
      c.expectedNames ?? [],
      c.line,
    );
  }
});

test("chomping strips leading tabs of every line", () => {
  assert.equal(chompHeredocContent(cases.chomp.input), cases.chomp.expected);
  assert.equal(chompHeredocContent("\t\ta\n b\n\tc"), "a\n b\nc");
});

test("fd and quoting", () => {
  assert.deepEqual(parseHeredocWord("3<<-'X'"), { name: "X", fd: 3, expand: false, chomp: true, content: "" });
});
