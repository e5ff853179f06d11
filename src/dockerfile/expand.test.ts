import { test } from "node:test";
import * as assert from "node:assert/strict";
import { parseDockerfile } from "./dockerfile.js";
import { expandHeredoc, expandInstruction } from "./expand.js";
import { envFromPairs } from "./shell-lexer.js";
import { DockerfileError } from "./errors.js";
import type { Instruction } from "./instructions.js";
import { findStage, stagesNeeded } from "./stages.js";
import { platformArgValues, resolveArgValue, resolveMetaArgs, unusedBuildArgs } from "./args.js";

const env = envFromPairs([
  ["A", "x"],
  ["DIR", "/app"],
  ["EMPTY", ""],
  ["PORTS", "80 443"],
]);
const instrs = (text: string): Instruction[] => parseDockerfile("FROM scratch\n" + text).stages[0]?.instructions ?? [];

test("expandInstruction expands exactly the fields BuildKit expands", () => {
  const [copy, envI, run, cmd, workdir, expose, volume, user, label, arg, onbuild] = instrs(
    [
      'COPY --from=build --chown=$A:$A --chmod=07${EMPTY}55 "$DIR/a" ${DIR}/c $DIR/',
      'ENV K_$A="$DIR v" L=${UNSET:-def}',
      "RUN --mount=type=cache,target=$DIR/cache echo $A",
      "CMD echo $A",
      "WORKDIR $DIR/sub",
      "EXPOSE $PORTS",
      "VOLUME $DIR/data",
      "USER ${A}:${A}",
      'LABEL "k $A"=v',
      "ARG N_$A=${DIR}",
      "ONBUILD RUN echo $A",
    ].join("\n"),
  );
  const x = <T extends Instruction>(i: T | undefined): T => {
    assert.ok(i);
    return expandInstruction(i, env).instruction;
  };
  const c = x(copy);
  assert.ok(c.kind === "copy");
  assert.deepEqual(
    [c.sources, c.dest, c.from, c.chown, c.chmod],
    [["/app/a", "/app/c"], "/app/", "build", "x:x", "0755"],
  );
  const e = x(envI);
  assert.ok(e.kind === "env");
  assert.deepEqual(e.pairs, [
    { key: "K_x", value: "/app v" },
    { key: "L", value: "def" },
  ]);
  const r = x(run);
  assert.ok(r.kind === "run");
  assert.deepEqual(r.command, { form: "shell", command: "echo $A" });
  assert.equal(r.mounts[0]?.target, "/app/cache");
  const cm = x(cmd);
  assert.ok(cm.kind === "cmd");
  assert.deepEqual(cm.command, { form: "shell", command: "echo $A" });
  assert.equal((x(workdir) as { value: string }).value, "/app/sub");
  assert.deepEqual((x(expose) as { values: string[] }).values, ["80", "443"]);
  assert.deepEqual((x(volume) as { values: string[] }).values, ["/app/data"]);
  assert.equal((x(user) as { value: string }).value, "x:x");
  assert.deepEqual((x(label) as { pairs: unknown }).pairs, [{ key: "k x", value: "v" }]);
  assert.deepEqual((x(arg) as { args: unknown }).args, [{ key: "N_x", value: "/app" }]);
  const ob = x(onbuild);
  assert.ok(ob.kind === "onbuild");
  assert.equal(ob.triggerText, "RUN echo $A");
});

test("JSON-form COPY keeps spaces; shell form splits like BuildKit", () => {
  const [json, shell] = instrs('COPY ["$DIR/a b", "/d"]\nCOPY "a b" /d');
  assert.ok(json && shell);
  const j = expandInstruction(json, env).instruction;
  assert.ok(j.kind === "copy");
  assert.deepEqual(j.sources, ["/app/a b"]);
  assert.throws(() => expandInstruction(shell, env), /matching double-quote/);
});

test("expandInstruction reports unmatched variables and located errors", () => {
  const [w, bad, mode] = instrs("WORKDIR $NOPE/x\nUSER ${X:?must be set}\nCOPY --chmod=$A a b");
  assert.ok(w && bad && mode);
  assert.deepEqual(expandInstruction(w, env).unmatched, ["NOPE"]);
  assert.throws(
    () => expandInstruction(bad, env),
    (e: unknown) => e instanceof DockerfileError && e.range?.start === 3 && /X: must be set/.test(e.message),
  );
  assert.throws(() => expandInstruction(mode, env), /invalid chmod/);
});

test("backtick escape token in expansion", () => {
  const df = parseDockerfile("# escape=`\nFROM scratch\nWORKDIR c:\\$A`$A\n");
  const w = df.stages[0]?.instructions[0];
  assert.ok(w);
  assert.equal((expandInstruction(w, env, df.escapeToken).instruction as { value: string }).value, "c:\\x$A");
});

test("ARG scoping: meta args, build-arg overrides, platform args, unused build args", () => {
  const df = parseDockerfile(
    [
      "ARG TAG=1.0",
      "ARG IMG=alpine:${TAG}",
      "ARG ONLYDECL",
      "FROM ${IMG} AS a",
      "ARG TAG",
      "ARG LOCAL=dflt",
      "FROM busybox",
      "RUN true",
    ].join("\n"),
  );
  const platform = platformArgValues({ os: "linux", architecture: "arm64", variant: "v8" });
  assert.equal(platform.get("TARGETPLATFORM"), "linux/arm64/v8");
  assert.equal(platform.get("BUILDARCH"), "arm64");
  const meta = resolveMetaArgs(df.metaArgs, new Map([["TAG", "2.0"]]), platform);
  assert.equal(meta.values.get("IMG"), "alpine:2.0");
  assert.equal(meta.values.has("ONLYDECL"), false);
  assert.equal(meta.values.get("TARGETOS"), "linux");
  const s0 = df.stages[0];
  assert.ok(s0);
  const [tag, local] = s0.instructions;
  assert.ok(tag?.kind === "arg" && local?.kind === "arg");
  assert.equal(resolveArgValue(tag.args[0] ?? { key: "" }, new Map(), meta.values), "2.0");
  assert.equal(resolveArgValue(local.args[0] ?? { key: "" }, new Map(), meta.values), "dflt");
  assert.equal(resolveArgValue(local.args[0] ?? { key: "" }, new Map([["LOCAL", "cli"]]), meta.values), "cli");
  const warnings = unusedBuildArgs(df, [s0], ["TAG", "LOCAL", "HTTP_PROXY", "NOPE", "ALSO"]);
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0]?.code, "UNUSED_BUILD_ARG");
  assert.match(warnings[0]?.message ?? "", /\[ALSO NOPE\]/);
});

test("stage graph: findStage, stagesNeeded, forward references", () => {
  const df = parseDockerfile(
    [
      "FROM alpine AS Base",
      "FROM base AS build",
      "RUN --mount=from=tools,target=/t make",
      "FROM busybox AS tools",
      "FROM scratch AS unused",
      "FROM scratch",
      "COPY --from=build /o /",
      "COPY --from=0 /a /",
      "COPY --from=nginx:latest /b /",
    ].join("\n"),
  );
  assert.equal(findStage(df.stages, "BASE")?.index, 0);
  assert.equal(findStage(df.stages, "2")?.name, "tools");
  assert.equal(findStage(df.stages, "nginx"), undefined);
  const ident = (s: string): string => s;
  assert.throws(
    () => stagesNeeded(df, undefined, (s) => s.from.image, ident),
    (e: unknown) =>
      e instanceof DockerfileError && /cannot mount from stage "tools"/.test(e.message) && e.range?.start === 3,
  );
  const ok = parseDockerfile(
    [
      "FROM alpine AS base",
      "FROM busybox AS tools",
      "FROM base AS build",
      "RUN --mount=from=tools,target=/t make",
      "FROM scratch AS unused",
      "FROM scratch",
      "COPY --from=build /o /",
      "COPY --from=0 /a /",
    ].join("\n"),
  );
  assert.deepEqual(
    stagesNeeded(ok, undefined, (s) => s.from.image, ident).map((s) => s.index),
    [0, 1, 2, 4],
  );
  assert.deepEqual(
    stagesNeeded(ok, "BUILD", (s) => s.from.image, ident).map((s) => s.index),
    [0, 1, 2],
  );
  assert.deepEqual(
    stagesNeeded(ok, "3", (s) => s.from.image, ident).map((s) => s.index),
    [3],
  );
  assert.throws(() => stagesNeeded(ok, "nope", (s) => s.from.image, ident), /target stage "nope" could not be found/);
  assert.throws(() => stagesNeeded(ok, "bulid", (s) => s.from.image, ident), /did you mean build\?/);
  const self = parseDockerfile("FROM scratch AS a\nCOPY --from=a /x /\n");
  assert.throws(
    () => stagesNeeded(self, undefined, (s) => s.from.image, ident),
    /circular dependency detected on stage/,
  );
});

test("BuildKit validation at expansion: blank FROM, COPY URL sources, deferred mount options", () => {
  const df = parseDockerfile("FROM ${BLANK}\nCOPY $URL /d\nRUN --mount=type=$T,target=$DIR/c,mode=0700 true\n");
  assert.throws(
    () => expandInstruction(df.stages[0]?.from as Instruction, env),
    /base name \(\$\{BLANK\}\) should not be blank/,
  );
  const [copy, run] = df.stages[0]?.instructions ?? [];
  assert.ok(copy && run);
  const urlEnv = envFromPairs([["URL", "https://example.com/x"]]);
  assert.throws(() => expandInstruction(copy, urlEnv), /source can't be a URL for COPY/);
  const cacheEnv = envFromPairs([
    ["T", "cache"],
    ["DIR", "/app"],
  ]);
  const r = expandInstruction(run, cacheEnv).instruction;
  assert.ok(r.kind === "run");
  assert.deepEqual([r.mounts[0]?.type, r.mounts[0]?.target, r.mounts[0]?.mode], ["cache", "/app/c", 0o700]);
  const bindEnv = envFromPairs([
    ["T", "bind"],
    ["DIR", "/a"],
  ]);
  assert.throws(() => expandInstruction(run, bindEnv), /mode not allowed/);
  assert.throws(
    () => parseDockerfile("FROM a\nCOPY --from=$X a b\n"),
    /variable expansion is not supported for --from/,
  );
  assert.throws(
    () => parseDockerfile("FROM a\nRUN --mount=from=$X,target=/x a\n"),
    /doesn't support variable expansion/,
  );
  assert.throws(() => parseDockerfile("FROM a\nRUN --mount=typ=$X a\n"), /did you mean type\?/);
  assert.throws(() => parseDockerfile("FROM a\nCOPY http://x/y /d\n"), /source can't be a URL for COPY/);
});

test("COPY heredoc bodies: shell-like escapes and variables, quotes kept; quoted markers verbatim", () => {
  const vars = envFromPairs([["name", "world"]]);
  const doc = (content: string, expand: boolean) => ({ name: "EOF", expand, chomp: false, content });
  assert.equal(expandHeredoc(doc("\\\n", true), vars).content, "\n");
  assert.equal(expandHeredoc(doc("\\\\\n", true), vars).content, "\\\n");
  assert.equal(expandHeredoc(doc("\\$\n", true), vars).content, "$\n");
  assert.equal(expandHeredoc(doc("'${name}' \"$name\"\n", true), vars).content, "'world' \"world\"\n");
  assert.equal(expandHeredoc(doc("\\\n", false), vars).content, "\\\n");
  assert.equal(expandHeredoc(doc("\\$ ${name}\n", false), vars).content, "\\$ ${name}\n");
});
