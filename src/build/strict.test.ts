import * as assert from "node:assert/strict";
import { test } from "node:test";
import { hasCode } from "../common/errors.js";
import { envFromPairs, expandInstruction, parseDockerfile, type Instruction } from "../dockerfile/index.js";
import type { BuildEvent } from "./events.js";
import {
  assertStrict,
  assertVarsDefined,
  checkSkipped,
  fromPlatformWarning,
  strictReporter,
  strictViolations,
  undefinedFromArgs,
} from "./strict.js";

test("strictReporter passes everything through unless strict; then leniency warnings throw", () => {
  const seen: BuildEvent[] = [];
  const lenient = strictReporter((e) => seen.push(e), false);
  lenient({ kind: "warning", code: "UNUSED_BUILD_ARG", message: "x" });
  assert.equal(seen.length, 1);
  const strict = strictReporter((e) => seen.push(e), true);
  strict({ kind: "warning", code: "CONSISTENT_INSTRUCTION_CASING", message: "style only" });
  strict({ kind: "info", message: "i" });
  assert.equal(seen.length, 3);
  assert.throws(
    () => strict({ kind: "warning", code: "COPY_IGNORED_PATH", message: "Dockerfile:3: COPY skipped /kaniko/x" }),
    (e: unknown) =>
      hasCode(e, "STRICT") && /Dockerfile:3: COPY skipped .*\[COPY_IGNORED_PATH\].*--strict/.test(String(e)),
  );
});

test("Dockerfile leniencies are listed with file:line; style lints are not", () => {
  const v = strictViolations(
    [
      { code: "MULTIPLE_INSTRUCTIONS_DISALLOWED", message: "only the last CMD is used", range: { start: 4, end: 4 } },
      { code: "JSON_ARGS_RECOMMENDED", message: "style", range: { start: 5, end: 5 } },
    ],
    "Dockerfile",
  );
  assert.deepEqual(v, ["Dockerfile:4: only the last CMD is used [MULTIPLE_INSTRUCTIONS_DISALLOWED]"]);
  assert.throws(
    () => assertStrict(v),
    (e: unknown) => hasCode(e, "STRICT"),
  );
  assertStrict([]);
});

test("FROM --platform is ignored only when it names another platform", () => {
  const amd64 = { os: "linux", architecture: "amd64" };
  assert.equal(fromPlatformWarning("linux/amd64", amd64, 1), undefined);
  assert.equal(fromPlatformWarning("linux/arm/v7", { os: "linux", architecture: "arm", variant: "v7" }, 1), undefined);
  const w = fromPlatformWarning("linux/arm64", amd64, 2);
  assert.equal(w?.code, "FROM_PLATFORM_IGNORED");
  assert.match(w?.message ?? "", /--platform=linux\/arm64 is ignored: kiln builds every stage for linux\/amd64/);
});

/**
 * Runs the UndefinedVar check on the last instruction of `body` (after `FROM scratch`) with `vars` set
 * (value undefined: declared by ARG without a value); returns the error message or "" when it passes.
 */
function undefinedVarCheck(body: string, vars: Record<string, string | undefined> = {}): string {
  const df = parseDockerfile(`FROM scratch\n${body}\n`);
  const instr = df.stages[0]?.instructions.at(-1) as Instruction;
  const pairs = new Map(Object.entries(vars).filter((kv): kv is [string, string] => kv[1] !== undefined));
  const env = envFromPairs(pairs);
  const { unmatched } = expandInstruction(instr, env, df.escapeToken);
  try {
    assertVarsDefined(instr, unmatched, env, df.escapeToken, (k) => Object.prototype.hasOwnProperty.call(vars, k));
    return "";
  } catch (e) {
    assert.ok(hasCode(e, "STRICT"), String(e));
    return (e as Error).message;
  }
}

test("UndefinedVar: an undefined variable in an expanded field fails, naming it; defined ones pass", () => {
  assert.match(undefinedVarCheck("COPY $foo ."), /usage of undefined variable '\$foo'.*\[UNDEFINED_VAR\].*--strict/);
  assert.equal(undefinedVarCheck("COPY $foo .", { foo: "x" }), "");
  // An ARG declared without a value defines the name (BuildKit), though it expands to "".
  assert.equal(undefinedVarCheck("COPY $foo .", { foo: undefined }), "");
  assert.match(undefinedVarCheck("ARG VERSION=$foo"), /'\$foo'/);
  assert.match(undefinedVarCheck("ENV PATH=$PAHT:/app/bin", { PATH: "/bin" }), /'\$PAHT'/);
  assert.match(undefinedVarCheck("WORKDIR /src/${APP}"), /'\$APP'/);
  assert.match(undefinedVarCheck("LABEL v=$A u=$B"), /undefined variables '\$A', '\$B': declare them/);
  assert.match(undefinedVarCheck("USER ${U}:${G}", { U: "1" }), /variable '\$G'/);
  assert.match(undefinedVarCheck("COPY --chown=$OWNER a /a"), /'\$OWNER'/);
  assert.match(undefinedVarCheck("RUN --mount=type=cache,id=$CACHE,target=/c true"), /'\$CACHE'/);
  // An escaped dollar is not a use.
  assert.equal(undefinedVarCheck("LABEL x=\\$notavar"), "");
});

test("UndefinedVar: the forms with a word count as uses, as in BuildKit; ${VAR:?} fails by itself", () => {
  assert.match(undefinedVarCheck("ENV X=${MAYBE:-fallback}"), /'\$MAYBE'/);
  assert.match(undefinedVarCheck("ENV X=${MAYBE:+alt}"), /'\$MAYBE'/);
  assert.match(undefinedVarCheck("ENV X=${MAYBE%.tar}"), /'\$MAYBE'/);
  assert.equal(undefinedVarCheck("ENV X=${MAYBE:-fallback}", { MAYBE: undefined }), "", "ARG MAYBE declares it");
  assert.throws(() => undefinedVarCheck("ENV X=${MUST:?required}"), /MUST: required/);
});

test("UndefinedVar: commands the shell expands are not checked; COPY heredocs are, unless the marker is quoted", () => {
  for (const body of ["RUN echo $nope", "CMD echo $nope", "ENTRYPOINT echo $nope", 'CMD ["echo", "$nope"]']) {
    assert.equal(undefinedVarCheck(body), "", body);
  }
  assert.equal(undefinedVarCheck("HEALTHCHECK CMD test -e $nope"), "");
  assert.match(undefinedVarCheck("COPY <<EOF /f\n$nope\nEOF"), /'\$nope'/);
  assert.equal(undefinedVarCheck("COPY <<'EOF' /f\n$nope\nEOF"), "");
  // BuildKit's own SBOM switches are never reported.
  assert.equal(undefinedVarCheck("LABEL x=$BUILDKIT_SBOM_SCAN_STAGE"), "");
});

test("UndefinedArgInFrom: FROM variables must be global ARGs or predefined", () => {
  const declared = (k: string): boolean => ["TAG", "BUILDPLATFORM"].includes(k);
  assert.deepEqual(undefinedFromArgs(["TAG", "BUILDPLATFORM"], declared, "Dockerfile", 1), []);
  assert.deepEqual(undefinedFromArgs(["VARIANT", "VARIANT"], declared, "Dockerfile", 3), [
    "Dockerfile:3: FROM argument 'VARIANT' is not declared (declare it with ARG before the first FROM) [UNDEFINED_ARG_IN_FROM]",
  ]);
});

test("a `# check=skip=` directive turns a check off for --strict too", () => {
  assert.equal(checkSkipped({}, "UndefinedVar"), false);
  assert.equal(checkSkipped({ check: "skip=JSONArgsRecommended,undefinedvar" }, "UndefinedVar"), true);
  assert.equal(checkSkipped({ check: "skip=all" }, "UndefinedArgInFrom"), true);
  assert.equal(checkSkipped({ check: "error=true" }, "UndefinedArgInFrom"), false);
});
