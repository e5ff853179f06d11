import { test } from "node:test";
import * as assert from "node:assert/strict";
import { MAX_STAGES, parseDockerfile, type Stage } from "./dockerfile.js";
import { DockerfileError } from "./errors.js";
import { expandInstruction } from "./expand.js";
import { MAX_EXPANSION_LENGTH, envFromPairs, lex } from "./shell-lexer.js";
import { stagesNeeded } from "./stages.js";

/** A Dockerfile whose stage `s{i}` is based on `s{i-1}`: the deepest possible stage graph. */
function chainedStages(n: number): string {
  const lines = ["FROM scratch AS s0"];
  for (let i = 1; i < n; i++) lines.push(`FROM s${i - 1} AS s${i}`);
  return lines.join("\n") + "\n";
}

test(
  "more than MAX_STAGES stages is a DockerfileError naming the first stage over the cap",
  { timeout: 20_000 },
  () => {
    assert.throws(
      () => parseDockerfile(chainedStages(20_000)),
      (e: unknown) =>
        e instanceof DockerfileError &&
        e.range?.start === MAX_STAGES + 1 &&
        /^Dockerfile:10001: too many stages/.test(e.message),
    );
  },
);

test("a chain of MAX_STAGES stages resolves without overflowing the stack", { timeout: 20_000 }, () => {
  const df = parseDockerfile(chainedStages(MAX_STAGES));
  const order = stagesNeeded(
    df,
    undefined,
    (s) => s.from.image,
    (s) => s,
  );
  assert.equal(order.length, MAX_STAGES);
  assert.deepEqual(
    order.map((s) => s.index),
    Array.from({ length: MAX_STAGES }, (_, i) => i),
  );
});

test(
  "an ENV value doubled line after line stops at MAX_EXPANSION_LENGTH with the line named",
  { timeout: 20_000 },
  () => {
    const lines = ["FROM scratch", `ENV a=${"x".repeat(60_000)}`];
    for (let i = 0; i < 10; i++) lines.push("ENV a=$a$a");
    const df = parseDockerfile(lines.join("\n") + "\n");
    const env = new Map<string, string>();
    const run = (): void => {
      for (const instr of (df.stages[0] as Stage).instructions) {
        const out = expandInstruction(instr, envFromPairs(env)).instruction;
        if (out.kind === "env") for (const p of out.pairs) env.set(p.key, p.value);
      }
    };
    // 60,000 characters doubled five times is 1,920,000: the fifth doubling (line 7) is refused.
    assert.throws(
      run,
      (e: unknown) =>
        e instanceof DockerfileError &&
        e.range?.start === 7 &&
        /^Dockerfile:7: .*expanded value is too long/.test(e.message),
    );
    assert.equal(env.get("a")?.length, 60_000 * 16);
  },
);

test("${a//pattern/replacement} cannot grow a value past MAX_EXPANSION_LENGTH", { timeout: 20_000 }, () => {
  const env = envFromPairs([["a", "x".repeat(2000)]]);
  assert.throws(() => lex("${a//?/$a}", env), /expanded value is too long/);
  assert.equal(lex("${a//x/yy}", env).word.length, 4000);
  assert.equal(lex("$a", envFromPairs([["a", "x".repeat(MAX_EXPANSION_LENGTH)]])).word.length, MAX_EXPANSION_LENGTH);
});
