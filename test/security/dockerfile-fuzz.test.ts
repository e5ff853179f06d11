/**
 * Dockerfile fuzzing: at least 100,000 seeded mutations of every Dockerfile in the conformance corpus
 * (BuildKit parser test files and kaniko's integration Dockerfiles) go through the front end (parse,
 * then expand every instruction against an environment). Each input must either parse or fail with the
 * front end's own DockerfileError — never another exception — and each parse must be bounded in time.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { DockerfileError, envFromPairs, expandInstruction, parseDockerfile } from "../../src/dockerfile/index.js";
import { conformanceDir } from "../support/tmp.js";
import { Figures, seededRng } from "../reliability/support.js";

const TOTAL = Number(process.env["KILN_FUZZ_INPUTS"] ?? "100000");
/** A single parse+expand slower than this is reported as a (near-)hang. */
const MAX_MS_PER_INPUT = 1_000;

const figures = new Figures("Dockerfile fuzz (parse + expand)");
after(() => figures.flush());

function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) walk(p, out);
    else if (/(^|\.)Dockerfile($|\.)/i.test(name) || /^Dockerfile/.test(name)) out.push(p);
  }
}

function corpus(): string[] {
  const root = conformanceDir();
  const files: string[] = [];
  for (const d of ["buildkit/frontend/dockerfile/parser", "kaniko-integration/integration"]) {
    const p = path.join(root, d);
    if (existsSync(p)) walk(p, files);
  }
  return files.sort();
}

/** Fragments that stress the lexer, the parser directives, heredocs, flags and variable expansion. */
const DICT = [
  "\\",
  "\\\n",
  "`",
  "$",
  "${",
  "}",
  "${X:-",
  "${X:+y}",
  "${X:?boom}",
  "${X#*}",
  "${X%%/*}",
  "${X/a/b}",
  "$$",
  '"',
  "'",
  "\n",
  "\r\n",
  "\t",
  " ",
  "#",
  "# escape=`\n",
  "# syntax=docker/dockerfile:1\n",
  "# check=error=true\n",
  "=",
  "--",
  "--from=",
  "--mount=type=cache,target=",
  "--mount=type=secret,id=x",
  "--chown=1:1 ",
  "--chmod=0755 ",
  "--platform=$BUILDPLATFORM ",
  "<<EOF\n",
  "<<-EOF\n",
  "<<'EOF'\n",
  "\nEOF\n",
  "[",
  "]",
  '["sh", "-c", ',
  ",",
  "\u0000",
  "\uFEFF",
  "é",
  "💥",
  "AS ",
  "FROM ",
  "RUN ",
  "COPY ",
  "ADD ",
  "ARG ",
  "ENV ",
  "ONBUILD ",
  "HEALTHCHECK --interval=1s CMD ",
  "SHELL ",
  "LABEL ",
  "EXPOSE ",
  "USER ",
  "WORKDIR ",
  "VOLUME ",
  "STOPSIGNAL ",
  "MAINTAINER ",
];

function mutate(src: string, rng: () => number): string {
  let s = src;
  const rounds = 1 + Math.floor(rng() * 4);
  for (let r = 0; r < rounds; r++) {
    const at = Math.floor(rng() * (s.length + 1));
    const op = Math.floor(rng() * 8);
    if (op <= 2) {
      s = s.slice(0, at) + (DICT[Math.floor(rng() * DICT.length)] ?? "") + s.slice(at);
    } else if (op === 3) {
      s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rng() * 8));
    } else if (op === 4) {
      s = s.slice(0, at) + String.fromCharCode(Math.floor(rng() * 128)) + s.slice(at + 1);
    } else if (op === 5) {
      const lines = s.split("\n");
      const i = Math.floor(rng() * lines.length);
      const j = Math.floor(rng() * lines.length);
      const li = lines[i] ?? "";
      lines[i] = lines[j] ?? "";
      lines[j] = li;
      s = lines.join("\n");
    } else if (op === 6) {
      const lines = s.split("\n");
      const i = Math.floor(rng() * lines.length);
      lines.splice(i, 0, lines[Math.floor(rng() * lines.length)] ?? "");
      s = lines.join("\n");
    } else {
      s = s.slice(0, at);
    }
  }
  return s;
}

const ENV = envFromPairs([
  ["X", "value/with/slashes"],
  ["BASE", "busybox"],
  ["EMPTY", ""],
  ["HOME", "/root"],
]);

test(`at least ${TOTAL} mutated Dockerfiles: only DockerfileError, every parse bounded`, { timeout: 300_000 }, () => {
  const files = corpus();
  assert.ok(files.length >= 50, `conformance corpus found (${files.length} Dockerfiles)`);
  const seeds = files.map((f) => readFileSync(f, "utf8"));
  const perFile = Math.ceil(TOTAL / seeds.length);
  const rng = seededRng(20261126);
  let inputs = 0;
  let parsed = 0;
  let rejected = 0;
  let slowest = 0;
  let slowestInput = "";
  const foreign: string[] = [];
  const t0 = performance.now();
  for (const [k, seed] of seeds.entries()) {
    for (let m = 0; m < perFile; m++) {
      const input = mutate(seed, rng);
      inputs++;
      const s0 = performance.now();
      try {
        const df = parseDockerfile(input, { file: "Dockerfile" });
        for (const st of df.stages) {
          expandInstruction(st.from, ENV, df.escapeToken);
          for (const ins of st.instructions) expandInstruction(ins, ENV, df.escapeToken);
        }
        parsed++;
      } catch (e) {
        if (e instanceof DockerfileError) rejected++;
        else if (foreign.length < 10)
          foreign.push(`${files[k] ?? "?"} mutation ${m}: ${String(e)}\n--- input ---\n${input.slice(0, 600)}`);
        else foreign.push("…");
      }
      const dt = performance.now() - s0;
      if (dt > slowest) {
        slowest = dt;
        slowestInput = input;
      }
    }
  }
  const secs = (performance.now() - t0) / 1000;
  figures.add(
    "mutated Dockerfiles",
    inputs,
    inputs - foreign.length,
    `${seeds.length} seed files; ${parsed} parsed, ${rejected} DockerfileError; ${secs.toFixed(1)} s; slowest ${slowest.toFixed(1)} ms`,
  );
  assert.ok(inputs >= TOTAL);
  assert.deepEqual(foreign, [], `non-DockerfileError exceptions:\n${foreign.join("\n\n")}`);
  assert.ok(slowest < MAX_MS_PER_INPUT, `slowest input took ${slowest.toFixed(0)} ms:\n${slowestInput.slice(0, 600)}`);
});
