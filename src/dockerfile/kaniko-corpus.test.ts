import { test } from "node:test";
import * as assert from "node:assert/strict";
import { parseDockerfile } from "./dockerfile.js";
import { expandInstruction } from "./expand.js";
import { envFromPairs, expandWord } from "./shell-lexer.js";
import { findStage, stagesNeeded } from "./stages.js";
import { platformArgValues, resolveArgValue, resolveMetaArgs } from "./args.js";
import { readConformance, readConformanceJson } from "./conformance-path.test-helper.js";

interface Entry {
  froms: { raw: string; resolved: string; kind: string; as: string | null }[];
  build_args: string[];
  kaniko_extra_flags: string[];
}
const analysis = readConformanceJson<{ dockerfiles: Record<string, Entry> }>("kaniko-integration/analysis.json");

test("kaniko integration Dockerfiles: parse, resolve FROM lines with meta args, expand every instruction", () => {
  const names = Object.keys(analysis.dockerfiles);
  assert.equal(names.length, 99);
  for (const name of names) {
    const entry = analysis.dockerfiles[name] as Entry;
    const df = parseDockerfile(readConformance("kaniko-integration/integration", name), { file: name });
    // Build args given as a bare name take their value from the environment in the upstream test.
    const buildArgs = new Map(
      entry.build_args.map((a) =>
        a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a, "x"],
      ) as [string, string][],
    );
    const meta = resolveMetaArgs(
      df.metaArgs,
      buildArgs,
      platformArgValues({ os: "linux", architecture: "amd64" }),
      df.escapeToken,
    );
    const metaEnv = envFromPairs(meta.values);
    assert.equal(df.stages.length, entry.froms.length, name);
    df.stages.forEach((stage, i) => {
      const want = entry.froms[i];
      assert.ok(want);
      const resolved = expandWord(stage.from.image, metaEnv, df.escapeToken).value;
      assert.equal(resolved, want.resolved, `${name} FROM #${i}`);
      assert.equal(stage.name, want.as?.toLowerCase(), `${name} AS #${i}`);
      const isStage = findStage(df.stages.slice(0, i), resolved) !== undefined;
      assert.equal(isStage, want.kind === "stage", `${name} kind #${i}`);
      // Simulate dispatch-time scoping: stage env = ARGs and ENVs seen so far in the stage.
      const vars = new Map<string, string>();
      for (const instr of stage.instructions) {
        const { instruction } = expandInstruction(instr, envFromPairs(vars), df.escapeToken);
        if (instruction.kind === "arg") {
          for (const d of instruction.args) {
            const v = resolveArgValue(d, buildArgs, meta.values);
            if (v !== undefined) vars.set(d.key, v);
          }
        } else if (instruction.kind === "env") {
          for (const p of instruction.pairs) vars.set(p.key, p.value);
        }
      }
    });
    const targetFlag = entry.kaniko_extra_flags.find((f) => f.startsWith("--target="));
    const target = targetFlag?.slice("--target=".length);
    const needed = stagesNeeded(
      df,
      target,
      (s) => expandWord(s.from.image, metaEnv, df.escapeToken).value,
      (s) => s,
    );
    assert.ok(needed.length >= 1, name);
    if (target) assert.equal(needed.at(-1)?.name, target);
  }
});

test("kaniko: ARG whose name is a variable, two-level ARG defaults, quoted defaults across stages", () => {
  const df = parseDockerfile(
    readConformance("kaniko-integration/integration/dockerfiles/Dockerfile_test_multistage_args_issue_1911"),
  );
  assert.ok(df.stages.length >= 2);
  const scratch = parseDockerfile(
    readConformance("kaniko-integration/integration/dockerfiles/Dockerfile_test_scratch"),
  );
  const argWithVarName = scratch.stages[0]?.instructions.find(
    (i) => i.kind === "arg" && i.args.some((a) => a.key.includes("$")),
  );
  assert.ok(argWithVarName, "Dockerfile_test_scratch declares an ARG whose name is a variable");
  const { instruction } = expandInstruction(argWithVarName, envFromPairs([["src", "file3"]]), scratch.escapeToken);
  assert.ok(instruction.kind === "arg");
  assert.equal(instruction.args[0]?.key, "file3");
});
