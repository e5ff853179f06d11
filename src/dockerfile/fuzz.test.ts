import { test } from "node:test";
import * as assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { parseDockerfile, parseInstructionLine } from "./dockerfile.js";
import { dumpAst } from "./dump.js";
import { expandInstruction } from "./expand.js";
import { envFromPairs } from "./shell-lexer.js";
import { DockerfileError } from "./errors.js";
import { stagesNeeded } from "./stages.js";
import { PatternMatcher } from "./pattern-matcher.js";
import { parseDockerignore } from "./dockerignore.js";
import { conformancePath } from "./conformance-path.test-helper.js";

/** mulberry32: small seeded PRNG so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function corpus(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const f of readdirSync(dir)) {
      const p = path.join(dir, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (f === "Dockerfile" || f.startsWith("Dockerfile_")) out.push(readFileSync(p, "utf8"));
    }
  };
  walk(conformancePath("buildkit/frontend/dockerfile/parser"));
  walk(conformancePath("kaniko-integration/integration/dockerfiles"));
  return out;
}

const TOKENS = [
  "\\",
  "`",
  '"',
  "'",
  "$",
  "${",
  "}",
  "{",
  ":-",
  ":?",
  "#",
  "##",
  "%",
  "/",
  "<<",
  "<<-",
  "EOF",
  "[",
  "]",
  ",",
  "=",
  "--",
  "--mount=",
  "--from=",
  "\n",
  "\r\n",
  "\t",
  " ",
  "\\\n",
  "# escape=`\n",
  "ONBUILD ",
  "RUN ",
  "COPY ",
  "FROM ",
  "AS ",
  "é",
  "\u00a0",
  "\u2028",
  "\0",
  "*",
  "?",
  "!",
  "**/",
];

function mutate(text: string, r: () => number): string {
  let s = text;
  const n = 1 + Math.floor(r() * 4);
  for (let k = 0; k < n; k++) {
    const pos = Math.floor(r() * (s.length + 1));
    const op = Math.floor(r() * 5);
    const tok = TOKENS[Math.floor(r() * TOKENS.length)] as string;
    if (op === 0) s = s.slice(0, pos) + tok + s.slice(pos);
    else if (op === 1) s = s.slice(0, pos) + s.slice(pos + 1 + Math.floor(r() * 8));
    else if (op === 2) {
      const lines = s.split("\n");
      const i = Math.floor(r() * lines.length);
      lines.splice(i, 0, lines[Math.floor(r() * lines.length)] ?? "");
      s = lines.join("\n");
    } else if (op === 3) s = s.slice(0, pos) + String.fromCharCode(Math.floor(r() * 0x250)) + s.slice(pos);
    else s = s.slice(0, pos) + tok + tok + s.slice(pos);
  }
  return s;
}

const env = envFromPairs([
  ["A", "x"],
  ["EMPTY", ""],
]);

/** Runs every front-end entry point; anything thrown must be a DockerfileError. */
function exercise(text: string): void {
  try {
    dumpAst(text);
  } catch (e) {
    if (!(e instanceof DockerfileError)) throw e;
  }
  let df;
  try {
    df = parseDockerfile(text);
  } catch (e) {
    if (!(e instanceof DockerfileError)) throw e;
    return;
  }
  for (const s of df.stages) {
    for (const i of [s.from, ...s.instructions]) {
      try {
        expandInstruction(i, env, df.escapeToken);
      } catch (e) {
        if (!(e instanceof DockerfileError)) throw e;
      }
      if (i.kind === "onbuild") {
        try {
          parseInstructionLine(i.triggerText);
        } catch (e) {
          if (!(e instanceof DockerfileError)) throw e;
        }
      }
    }
  }
  try {
    stagesNeeded(
      df,
      undefined,
      (s) => s.from.image,
      (x) => x,
    );
  } catch (e) {
    if (!(e instanceof DockerfileError)) throw e;
  }
}

test("fuzz: mutated corpus Dockerfiles only ever throw DockerfileError", () => {
  const files = corpus();
  assert.ok(files.length > 100, "corpus found");
  const r = rng(20261126);
  const deadline = Date.now() + 30_000;
  let runs = 0;
  for (; runs < 4000 && Date.now() < deadline; runs++) {
    const base = files[Math.floor(r() * files.length)] as string;
    const text = mutate(base, r);
    try {
      exercise(text);
    } catch (e) {
      assert.fail(`run ${runs}: ${String(e)}\n--- input ---\n${text}`);
    }
  }
  assert.ok(runs >= 1000, `only ${runs} runs completed in time`);
});

test("fuzz: random .dockerignore patterns only ever throw DockerfileError", () => {
  const r = rng(7);
  const alphabet = [
    "a",
    "b",
    "/",
    "*",
    "**",
    "?",
    "[",
    "]",
    "^",
    "-",
    "\\",
    "!",
    ".",
    "..",
    " ",
    "#",
    "{",
    "(",
    "$",
    "é",
  ];
  for (let i = 0; i < 3000; i++) {
    const lines: string[] = [];
    for (let l = 0; l < 1 + Math.floor(r() * 3); l++) {
      let p = "";
      for (let c = 0; c < 1 + Math.floor(r() * 8); c++) p += alphabet[Math.floor(r() * alphabet.length)];
      lines.push(p);
    }
    try {
      const pm = new PatternMatcher(parseDockerignore(lines.join("\n")));
      pm.matches("a/b/c");
      pm.matches("a");
    } catch (e) {
      if (!(e instanceof DockerfileError)) assert.fail(`${String(e)} for ${JSON.stringify(lines)}`);
    }
  }
});
