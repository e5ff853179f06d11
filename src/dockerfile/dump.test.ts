import { test } from "node:test";
import * as assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { dumpAst, dumpNode } from "./dump.js";
import { parseAst } from "./ast.js";
import { DockerfileError } from "./errors.js";
import { conformancePath, readConformance, readConformanceJson } from "./conformance-path.test-helper.js";

const TESTFILES = "buildkit/frontend/dockerfile/parser/testfiles";

test("every BuildKit parser testfile dumps exactly to its result file", () => {
  const dirs = readdirSync(conformancePath(TESTFILES));
  assert.equal(dirs.length, 33);
  for (const dir of dirs) {
    const df = readConformance(TESTFILES, dir, "Dockerfile");
    const want = readConformance(TESTFILES, dir, "result");
    assert.equal(dumpAst(df), want, dir);
  }
});

interface Child {
  dump: string;
  startLine: number;
  endLine: number;
  original: string;
  flags: string[];
  prevComment: string[];
}
interface ParseCase {
  name: string;
  dockerfile: string;
  escapeToken: string;
  warnings: string[] | null;
  children: Child[];
}
interface HeredocJson {
  Name: string;
  FileDescriptor: number;
  Expand: boolean;
  Chomp: boolean;
  Content: string;
}
interface ParserCases {
  parseCases: ParseCase[];
  negativeCases: { name: string; dockerfile: string; actualError: string }[];
  lineInfo: { astStartLine: number; astEndLine: number; children: Child[]; dockerfile?: string };
  heredoc: {
    dockerfile: string;
    cases: { childIndex: number; original: string; dump: string; expectedHeredocs: HeredocJson[] | null }[];
  };
  jsonHeredoc: { dockerfile: string };
  heredocsFromLine: { line: string; expectedNames: string[] | null }[];
  parseHeredocHelpers: { src: string; kind: string; actualName: string | null; actualError?: string }[];
  chomp: { input: string; expected: string };
}
const cases = readConformanceJson<ParserCases>("buildkit/parser-cases.json");

test("parse cases: line ranges, originals, flags, comments, escape token and warnings", () => {
  for (const c of cases.parseCases) {
    const r = parseAst(c.dockerfile);
    assert.equal(r.escapeToken, c.escapeToken, c.name);
    assert.deepEqual(
      r.warnings.map((w) => w.message),
      c.warnings ?? [],
      c.name,
    );
    assert.equal(r.children.length, c.children.length, c.name);
    r.children.forEach((n, i) => {
      const want = c.children[i] as Child;
      assert.equal(dumpNode(n), want.dump, `${c.name}#${i}`);
      assert.equal(n.startLine, want.startLine, `${c.name}#${i} start`);
      assert.equal(n.endLine, want.endLine, `${c.name}#${i} end`);
      assert.equal(n.original, want.original, `${c.name}#${i} original`);
      assert.deepEqual(n.flags, want.flags ?? [], `${c.name}#${i} flags`);
      assert.deepEqual(n.prevComment, want.prevComment ?? [], `${c.name}#${i} comments`);
    });
  }
});

test("negative cases fail with BuildKit's message", () => {
  assert.equal(cases.negativeCases.length, 4);
  for (const c of cases.negativeCases) {
    assert.throws(
      () => parseAst(c.dockerfile),
      (e: unknown) => e instanceof DockerfileError && e.message.includes(c.actualError),
      c.name,
    );
  }
});

test("testfile-line: instruction line ranges", () => {
  const r = parseAst(readConformance("buildkit/frontend/dockerfile/parser/testfile-line/Dockerfile"));
  assert.equal(r.children[0]?.startLine, cases.lineInfo.astStartLine);
  assert.equal(r.children.at(-1)?.endLine, cases.lineInfo.astEndLine);
  assert.deepEqual(
    r.children.map((c) => [c.startLine, c.endLine]),
    [
      [5, 5],
      [11, 12],
      [17, 31],
    ],
  );
});

test("heredoc extraction table", () => {
  const r = parseAst(cases.heredoc.dockerfile);
  for (const c of cases.heredoc.cases) {
    const n = r.children[c.childIndex];
    assert.ok(n, `child ${c.childIndex}`);
    assert.equal(n.original, c.original);
    assert.equal(dumpNode(n), c.dump);
    const want = (c.expectedHeredocs ?? []).map((h) => ({
      name: h.Name,
      fd: h.FileDescriptor,
      expand: h.Expand,
      chomp: h.Chomp,
      content: h.Content,
    }));
    assert.deepEqual(
      n.heredocs.map((h) => ({ ...h, fd: h.fd ?? 0 })),
      want,
      c.original,
    );
  }
});

test("JSON-form RUN never has heredocs", () => {
  const r = parseAst(cases.jsonHeredoc.dockerfile);
  for (const n of r.children.slice(1)) assert.deepEqual(n.heredocs, []);
  assert.equal(r.children.length, 4);
});

test("unterminated heredoc is an error with the line", () => {
  assert.throws(
    () => parseAst("FROM a\nRUN <<EOF\necho hi\n"),
    (e: unknown) => e instanceof DockerfileError && e.code === "DOCKERFILE_HEREDOC" && e.range?.start === 2,
  );
});

test("empty-continuation warnings and the line-length limit", () => {
  const df = "FROM busybox\nRUN something \\\n\n    following \\\n\n    other\n";
  assert.equal(parseAst(df).warnings.length, 1);
  const df2 = "FROM busybox\nRUN a \\\n\nb\nRUN c \\\n  \nd\n";
  assert.equal(parseAst(df2).warnings.length, 2);
  assert.throws(
    () => parseAst("FROM a\nRUN " + "x".repeat(70000)),
    (e: unknown) => e instanceof DockerfileError && /greater than max allowed size of 65535/.test(e.message),
  );
});

test("BOM, CRLF and directive handling", () => {
  const r = parseAst("\uFEFF# escape=`\r\n# syntax=docker/dockerfile:1\r\nFROM a\r\nRUN a `\r\n  b\r\n");
  assert.equal(r.escapeToken, "`");
  assert.deepEqual(r.directives, { escape: "`", syntax: "docker/dockerfile:1" });
  assert.equal(r.children[1]?.original, "RUN a   b");
  assert.throws(() => parseAst("# escape=`\n# ESCAPE=\\\nFROM a\n"), /only one escape parser directive/);
  assert.throws(() => parseAst("# escape=x\nFROM a\n"), /invalid escape token/);
  const after = parseAst("# comment\n# escape=`\nFROM a\nRUN a \\\nb\n");
  assert.equal(after.escapeToken, "\\");
});
