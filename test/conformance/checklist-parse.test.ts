import { test } from "node:test";
import assert from "node:assert/strict";
import { DockerfileError, parseDockerfile, stagesNeeded } from "../../src/dockerfile/index.js";
import { setEnv } from "../../src/build/env.js";
import { exposeHistory, goDuration, healthcheckHistory } from "../../src/build/history.js";
import { healthConfig } from "../../src/build/metadata.js";

// Parser-level items of the BuildKit frontend checklist (docs/buildkit-checklist.md) that no other unit
// test pins with BuildKit's wording.
const parse = (body: string) => parseDockerfile("FROM a\n" + body + "\n");
const fails = (body: string, re: RegExp) =>
  assert.throws(
    () => parse(body),
    (e: unknown) => e instanceof DockerfileError && re.test(e.message),
    body,
  );

test("instructions without arguments fail with BuildKit's count words", () => {
  for (const kw of ["MAINTAINER", "WORKDIR", "USER", "STOPSIGNAL"])
    fails(kw, new RegExp(`${kw} requires exactly one argument`));
  for (const kw of ["ENV", "LABEL", "ONBUILD", "HEALTHCHECK", "EXPOSE", "VOLUME"]) {
    fails(kw, new RegExp(`${kw} requires at least one argument`));
  }
  fails("ADD x", /ADD requires at least two arguments/);
  fails("COPY x", /COPY requires at least two arguments/);
  fails("COPY\t\\\n  x", /COPY requires at least two arguments/);
});

test("ENV/LABEL key-value errors: a missing value, a blank name", () => {
  fails("ENV A=1 B", /can't find = in "B"/);
  fails("LABEL a=b c", /can't find = in "c"/);
  fails("ENV A", /ENV must have two arguments/);
  fails("ENV =x", /ENV names can not be blank/);
});

test("unknown flags and instructions: the words as written, with suggestions", () => {
  fails("MAINTAINER --boo x", /unknown flag: --boo/);
  fails("RUN --mont=type=cache,target=/x true", /unknown flag: --mont.*did you mean --mount\?/);
  fails("FOO bar", /unknown instruction "FOO"/);
  fails("foo bar", /unknown instruction "foo"/);
  fails("FNTRYPOINT x", /did you mean ENTRYPOINT\?/);
});

test("JSON followed by text: kiln keeps docker 20.10's reading (exec form, rest ignored)", () => {
  // Deliberately different from current BuildKit (shell form): docs/fidelity.md D6.
  const run = parse('RUN ["echo","hello"]this is invalid').stages[0]?.instructions[0];
  assert.deepEqual(run?.kind === "run" ? run.command : undefined, { form: "exec", args: ["echo", "hello"] });
});

test("HEALTHCHECK: shell form gives CMD-SHELL, intervals below 1ms fail, 0ms and 1ms pass", () => {
  const h = parse("HEALTHCHECK CMD hello world").stages[0]?.instructions[0];
  assert.ok(h?.kind === "healthcheck");
  assert.deepEqual(healthConfig(h, ["/bin/sh", "-c"]).Test, ["CMD-SHELL", "hello world"]);
  fails("HEALTHCHECK --interval=50ns CMD a", /cannot be less than 1ms/);
  parse("HEALTHCHECK --interval=0ms CMD a");
  parse("HEALTHCHECK --interval=1ms CMD a");
});

test("history texts: Go durations, HEALTHCHECK as %+v, EXPOSE sorted", () => {
  assert.deepEqual([0, 50, 1500, 100e6, 1e9, 1.5e9, 90e9, 3600e9].map(goDuration), [
    "0s",
    "50ns",
    "1.5µs",
    "100ms",
    "1s",
    "1.5s",
    "1m30s",
    "1h0m0s",
  ]);
  assert.equal(
    healthcheckHistory({ Test: ["CMD-SHELL", "a b"], Interval: 1e9, Timeout: 10e9, Retries: 5 }),
    "{Test:[CMD-SHELL a b] Interval:1s Timeout:10s StartPeriod:0s StartInterval:0s Retries:5}",
  );
  assert.equal(exposeHistory(["5000", "2375/tcp", "1234/UDP"]), "[1234/udp 2375/tcp 5000/tcp]");
});

test("stages: COPY --from a later stage fails; mount option typos get suggestions", () => {
  const df = parseDockerfile("FROM a AS one\nCOPY --from=two /x /x\nFROM b AS two\n");
  assert.throws(
    () =>
      stagesNeeded(
        df,
        "one",
        (s) => s.from.image,
        (s) => s,
      ),
    /needs to be defined before current stage/,
  );
  fails("RUN --mount=type=tmp,target=/x a", /unsupported mount type "tmp".*did you mean tmpfs\?/);
  fails("RUN --mount=typ=cache,target=/x a", /unexpected key 'typ'.*did you mean type\?/);
});

test("ENV sets replace the first entry in place; a bare key becomes key=value", () => {
  assert.deepEqual(setEnv(["A=1", "B=2", "A=3"], "A", "x"), ["A=x", "B=2", "A=3"]);
  assert.deepEqual(setEnv(["PATH=/bin", "KEY"], "KEY", "v"), ["PATH=/bin", "KEY=v"]);
});

test("invalid --chmod values fail with BuildKit's message", () => {
  for (const v of ["64a", "10000"]) {
    fails(
      `COPY --chmod=${v} a b`,
      new RegExp(`invalid chmod parameter: '${v}'. it should be octal string and between 0 and 07777`),
    );
  }
  parse("COPY --chmod=0 a b");
});
