import { test } from "node:test";
import * as assert from "node:assert/strict";
import { parseDockerfile, parseInstructionLine } from "./dockerfile.js";
import { DockerfileError } from "./errors.js";
import type { Instruction } from "./instructions.js";

const first = (text: string): Instruction => {
  const df = parseDockerfile("FROM scratch\n" + text);
  const i = df.stages[0]?.instructions[0];
  assert.ok(i, "instruction parsed");
  return i;
};
const fails = (text: string, code: string, re: RegExp) =>
  assert.throws(
    () => parseDockerfile(text),
    (e: unknown) => e instanceof DockerfileError && e.code === code && re.test(e.message),
    text,
  );

test("stages, names, meta args and ranges", () => {
  const df = parseDockerfile(
    "# syntax=docker/dockerfile:1\nARG BASE=alpine\nFROM --platform=$BUILDPLATFORM ${BASE} AS Build\nRUN make\n\nFROM scratch\nCOPY --from=build /out /\n",
  );
  assert.equal(df.metaArgs.length, 1);
  assert.deepEqual(df.metaArgs[0]?.args, [{ key: "BASE", value: "alpine" }]);
  assert.equal(df.stages.length, 2);
  const s0 = df.stages[0];
  assert.equal(s0?.name, "build");
  assert.equal(s0?.from.image, "${BASE}");
  assert.equal(s0?.from.platform, "$BUILDPLATFORM");
  assert.deepEqual(s0?.from.range, { start: 3, end: 3 });
  assert.equal(df.stages[1]?.instructions[0]?.kind, "copy");
  assert.deepEqual(df.directives, { syntax: "docker/dockerfile:1" });
  assert.ok(df.warnings.some((w) => w.code === "STAGE_NAME_CASING"));
});

test("exec and shell forms, SHELL requires JSON, JSON fallback", () => {
  assert.deepEqual((first('CMD ["a", "b"]') as { command: unknown }).command, { form: "exec", args: ["a", "b"] });
  assert.deepEqual((first("CMD [a, b]") as { command: unknown }).command, { form: "shell", command: "[a, b]" });
  assert.deepEqual((first("ENTRYPOINT echo hi") as { command: unknown }).command, {
    form: "shell",
    command: "echo hi",
  });
  fails("FROM a\nSHELL /bin/sh -c\n", "DOCKERFILE_ARGUMENTS", /JSON form/);
  const df = parseDockerfile("FROM a\nCMD echo hi\n");
  assert.ok(df.warnings.some((w) => w.code === "JSON_ARGS_RECOMMENDED" && w.range?.start === 2));
});

test("RUN flags: mounts, network, security", () => {
  const r = first(
    "RUN --mount=type=cache,target=/root/.cache,sharing=locked,mode=0700,uid=1 --mount=type=secret,id=tok,required --mount=type=tmpfs,target=/t,size=64m --mount=type=ssh --mount=from=build,source=/o,target=/i,rw --network=none --security=insecure make",
  );
  assert.equal(r.kind, "run");
  if (r.kind !== "run") return;
  assert.deepEqual(r.command, { form: "shell", command: "make" });
  assert.equal(r.network, "none");
  assert.equal(r.security, "insecure");
  const [cache, secret, tmpfs, ssh, bind] = r.mounts;
  assert.equal(cache?.type, "cache");
  assert.equal(cache?.sharing, "locked");
  assert.equal(cache?.mode, 0o700);
  assert.equal(cache?.uid, 1);
  assert.equal(cache?.readonly, false);
  assert.equal(secret?.id, "tok");
  assert.equal(secret?.required, true);
  assert.equal(secret?.target, "/run/secrets/tok");
  assert.equal(tmpfs?.size, 64 * 1024 * 1024);
  assert.equal(ssh?.id, "default");
  assert.equal(bind?.type, "bind");
  assert.equal(bind?.from, "build");
  assert.equal(bind?.readonly, false);
  assert.equal(bind?.raw, "from=build,source=/o,target=/i,rw");
  fails("FROM a\nRUN --mount=type=bogus,target=/x a\n", "DOCKERFILE_MOUNT", /unsupported mount type "bogus"/);
  fails("FROM a\nRUN --mount=type=bind,target=/x,mode=0700 a\n", "DOCKERFILE_MOUNT", /mode not allowed/);
  fails("FROM a\nRUN --mount=type=cache,target=/x,sharng=locked a\n", "DOCKERFILE_MOUNT", /did you mean sharing/);
  fails("FROM a\nRUN --network=bridge a\n", "DOCKERFILE_FLAG", /unsupported network mode/);
  fails("FROM a\nRUN --mnt=type=cache a\n", "DOCKERFILE_FLAG", /unknown flag: --mnt for RUN.*did you mean --mount/);
  fails("FROM a\nRUN --mount=type=secret a\n", "DOCKERFILE_MOUNT", /one of source, target, id or env/);
});

test("COPY/ADD flags, heredoc sources and chmod validation", () => {
  const c = first("COPY --from=0 --chown=1:1 --chmod=u+x,g-w --link --parents --exclude=*.md --exclude=x a b /dst/");
  assert.equal(c.kind, "copy");
  if (c.kind !== "copy") return;
  assert.deepEqual(c.sources, ["a", "b"]);
  assert.equal(c.dest, "/dst/");
  assert.equal(c.from, "0");
  assert.equal(c.chown, "1:1");
  assert.equal(c.chmod, "u+x,g-w");
  assert.equal(c.link, true);
  assert.equal(c.parents, true);
  assert.deepEqual(c.excludes, ["*.md", "x"]);
  const a = first("ADD --checksum=sha256:abc --keep-git-dir=true --unpack=false --chmod=0755 https://x/y.tgz /d");
  assert.equal(a.kind, "add");
  if (a.kind !== "add") return;
  assert.equal(a.checksum, "sha256:abc");
  assert.equal(a.keepGitDir, true);
  assert.equal(a.unpack, false);
  assert.equal(a.chmod, "0755");
  fails("FROM a\nCOPY --chmod=999 a b\n", "DOCKERFILE_FLAG", /invalid chmod/);
  fails(
    "FROM a\nADD --checksum=sha256:abc https://x/1 https://x/2 /d/\n",
    "DOCKERFILE_ARGUMENTS",
    /checksum can't be specified for multiple sources/,
  );
  fails("FROM a\nADD --checksum=sha256:abc <<EOF /f\nx\nEOF\n", "DOCKERFILE_ARGUMENTS", /checksum requires HTTP\(S\)/);
  fails("FROM a\nADD --from=x a b\n", "DOCKERFILE_FLAG", /unknown flag: --from for ADD/);
  fails("FROM a\nCOPY --link=maybe a b\n", "DOCKERFILE_FLAG", /expecting boolean value/);
  fails("FROM a\nCOPY --from a b\n", "DOCKERFILE_FLAG", /missing a value on flag: --from/);
  fails("FROM a\nCOPY --from=a --from=b a b\n", "DOCKERFILE_FLAG", /duplicate flag/);
  fails("FROM a\nCOPY onlyone\n", "DOCKERFILE_ARGUMENTS", /at least two arguments/);
  const h = parseDockerfile("FROM a\nCOPY <<one <<-'two' /dest/\nhello $X\none\n\tbye\n\ttwo\nRUN echo\n");
  const hc = h.stages[0]?.instructions[0];
  assert.equal(hc?.kind, "copy");
  if (hc?.kind !== "copy") return;
  assert.deepEqual(hc.sources, []);
  assert.deepEqual(
    hc.heredocs.map((d) => [d.name, d.expand, d.chomp, d.content]),
    [
      ["one", true, false, "hello $X\n"],
      ["two", false, true, "bye\n"],
    ],
  );
  assert.deepEqual(hc.range, { start: 2, end: 6 });
  assert.deepEqual(h.stages[0]?.instructions[1]?.range, { start: 7, end: 7 });
});

test("RUN heredocs with fd and several bodies", () => {
  const r = parseDockerfile("FROM a\nRUN <<EOF 3<<-X cat /dev/fd/3\necho a\nEOF\n\tdata\n\tX\n").stages[0]
    ?.instructions[0];
  assert.equal(r?.kind, "run");
  if (r?.kind !== "run") return;
  assert.deepEqual(r.command, { form: "shell", command: "<<EOF 3<<-X cat /dev/fd/3" });
  assert.deepEqual(r.heredocs, [
    { name: "EOF", expand: true, chomp: false, content: "echo a\n" },
    { name: "X", fd: 3, expand: true, chomp: true, content: "data\n" },
  ]);
});

test("ENV, LABEL, ARG, EXPOSE, VOLUME, WORKDIR, USER, STOPSIGNAL, MAINTAINER", () => {
  assert.deepEqual((first('ENV A=1 B="x y" C=$A') as { pairs: unknown }).pairs, [
    { key: "A", value: "1" },
    { key: "B", value: '"x y"' },
    { key: "C", value: "$A" },
  ]);
  assert.deepEqual((first("ENV A hello world") as { pairs: unknown }).pairs, [{ key: "A", value: "hello world" }]);
  assert.deepEqual((first('LABEL "a b"=c') as { pairs: unknown }).pairs, [{ key: '"a b"', value: "c" }]);
  assert.deepEqual((first("ARG A B=2 C=") as { args: unknown }).args, [
    { key: "A" },
    { key: "B", value: "2" },
    { key: "C", value: "" },
  ]);
  assert.deepEqual((first("EXPOSE 80/tcp 443") as { values: unknown }).values, ["80/tcp", "443"]);
  assert.deepEqual((first('VOLUME ["/a", "/b"]') as { values: unknown }).values, ["/a", "/b"]);
  assert.equal((first("WORKDIR /a b") as { value: unknown }).value, "/a b");
  assert.equal((first("USER me:grp") as { value: unknown }).value, "me:grp");
  assert.equal((first("STOPSIGNAL SIGKILL") as { value: unknown }).value, "SIGKILL");
  assert.equal((first("MAINTAINER me") as { value: unknown }).value, "me");
  fails("FROM a\nENV =x\n", "DOCKERFILE_ARGUMENTS", /ENV names can not be blank/);
  fails("FROM a\nENV A=1 B\n", "DOCKERFILE_SYNTAX", /can't find = in "B"/);
  fails("FROM a\nWORKDIR\n", "DOCKERFILE_ARGUMENTS", /WORKDIR requires exactly one argument/);
  fails("FROM a\nENV --x=1 A=1\n", "DOCKERFILE_FLAG", /ENV takes no flags/);
});

test("HEALTHCHECK options, NONE and errors", () => {
  const h = first(
    "HEALTHCHECK --interval=1m30s --timeout=3s --start-period=0s --start-interval=500ms --retries=3 CMD curl -f http://x/",
  );
  assert.equal(h.kind, "healthcheck");
  if (h.kind !== "healthcheck") return;
  assert.deepEqual(h.test, { form: "shell", command: "curl -f http://x/" });
  assert.equal(h.interval, 90e9);
  assert.equal(h.timeout, 3e9);
  assert.equal(h.startPeriod, undefined);
  assert.equal(h.startInterval, 5e8);
  assert.equal(h.retries, 3);
  assert.equal((first("HEALTHCHECK NONE") as { test: unknown }).test, "NONE");
  assert.deepEqual((first('HEALTHCHECK CMD ["a","b"]') as { test: unknown }).test, { form: "exec", args: ["a", "b"] });
  fails("FROM a\nHEALTHCHECK CONNECT TCP 7000\n", "DOCKERFILE_ARGUMENTS", /Unknown type "CONNECT"/);
  fails("FROM a\nHEALTHCHECK --interval=10 CMD a\n", "DOCKERFILE_FLAG", /missing unit/);
  fails("FROM a\nHEALTHCHECK --interval=1us CMD a\n", "DOCKERFILE_FLAG", /less than 1ms/);
  fails("FROM a\nHEALTHCHECK --retries=-1 CMD a\n", "DOCKERFILE_FLAG", /cannot be negative/);
  fails("FROM a\nHEALTHCHECK NONE x\n", "DOCKERFILE_ARGUMENTS", /takes no arguments/);
});

test("ONBUILD triggers, forbidden triggers and stored trigger text", () => {
  const o = first("ONBUILD RUN <<EOF\necho hi\nEOF\n");
  assert.equal(o.kind, "onbuild");
  if (o.kind !== "onbuild") return;
  assert.equal(o.trigger.kind, "run");
  assert.equal(o.triggerText, "RUN <<EOF\necho hi\nEOF");
  const back = parseInstructionLine(o.triggerText);
  assert.equal(back.kind, "run");
  if (back.kind === "run") assert.equal(back.heredocs[0]?.content, "echo hi\n");
  fails("FROM a\nONBUILD ONBUILD RUN x\n", "DOCKERFILE_ARGUMENTS", /Chaining ONBUILD/);
  fails("FROM a\nONBUILD FROM x\n", "DOCKERFILE_ARGUMENTS", /FROM isn't allowed as an ONBUILD trigger/);
  fails("FROM a\nONBUILD MAINTAINER x\n", "DOCKERFILE_ARGUMENTS", /MAINTAINER isn't allowed/);
  fails("FROM a\nONBUILD RUNN x\n", "DOCKERFILE_UNKNOWN_INSTRUCTION", /did you mean RUN/);
  assert.equal(parseInstructionLine("COPY --from=x a b").kind, "copy");
  assert.throws(() => parseInstructionLine("RUN a\nRUN b"), DockerfileError);
});

test("errors carry file, line, offending text and a hint", () => {
  try {
    parseDockerfile("FROM a\n\nRUNN make\n", { file: "build/Dockerfile" });
    assert.fail("expected an error");
  } catch (e) {
    assert.ok(e instanceof DockerfileError);
    assert.equal(e.code, "DOCKERFILE_UNKNOWN_INSTRUCTION");
    assert.equal(e.message, 'build/Dockerfile:3: unknown instruction "RUNN" — did you mean RUN?');
    assert.equal(e.file, "build/Dockerfile");
    assert.deepEqual(e.range, { start: 3, end: 3 });
    assert.equal(e.lineText, "RUNN make");
  }
  fails("RUN x\n", "DOCKERFILE_STAGE", /RUN instruction before the first FROM/);
  fails("ARG x\n", "DOCKERFILE_EMPTY", /dockerfile contains no stages to build/);
  fails("FROM a AS x\nFROM b AS X\n", "DOCKERFILE_STAGE", /duplicate stage name "x"/);
  fails("FROM a AS 1x\n", "DOCKERFILE_STAGE", /invalid name for build stage/);
  fails("FROM a b\n", "DOCKERFILE_ARGUMENTS", /one or three arguments/);
  fails('FROM a\nCMD ["a", 1]\n', "DOCKERFILE_SYNTAX", /strings only/);
  fails("", "DOCKERFILE_EMPTY", /file with no instructions/);
});

test("FROM/AS casing warning and escape directive in instructions", () => {
  const df = parseDockerfile("FROM a as b\nRUN x\n");
  assert.ok(df.warnings.some((w) => w.code === "FROM_AS_CASING"));
  const bt = parseDockerfile("# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo\n");
  assert.equal(bt.escapeToken, "`");
  const run = bt.stages[0]?.instructions[0];
  assert.equal(run?.kind === "run" && run.command.form === "shell" ? run.command.command : "", "dir c:\\   && echo");
});

test("RUN --device and --security=insecure are accepted with a warning each (kiln provides neither)", () => {
  const df = parseDockerfile("FROM a\nRUN --device=vendor.com/gpu=all --device=/dev/fuse --security=insecure true\n");
  const run = df.stages[0]?.instructions[0];
  assert.equal(run?.kind, "run");
  const codes = df.warnings.filter((w) => w.range?.start === 2).map((w) => w.code);
  assert.deepEqual(codes, ["RUN_SECURITY_IGNORED", "RUN_DEVICE_IGNORED", "RUN_DEVICE_IGNORED"]);
  assert.ok(df.warnings.some((w) => w.message === "RUN --device=/dev/fuse is ignored"));
  assert.equal(parseDockerfile("FROM a\nRUN --security=sandbox true\n").warnings.length, 0);
});

test("# check=skip= directive filters warnings by BuildKit rule name", () => {
  const text = "FROM a as Build\nCMD echo hi\n";
  assert.equal(parseDockerfile(text).warnings.length, 3);
  const skipped = parseDockerfile("# check=skip=JSONArgsRecommended,StageNameCasing;error=true\n" + text);
  assert.deepEqual(
    skipped.warnings.map((w) => w.code),
    ["FROM_AS_CASING"],
  );
  assert.equal(parseDockerfile("# check=skip=all\n" + text).warnings.length, 0);
});

test("lint warnings: legacy ENV, EXPOSE format and casing, instruction casing, repeated CMD", () => {
  const df = parseDockerfile('FROM a\nENV k v\nEXPOSE 80/TCP 127.0.0.1:80:80\nrun x\nCMD ["a"]\nCMD ["b"]\n');
  const codes = df.warnings.map((w) => `${w.code}@${w.range?.start}`);
  for (const c of [
    "LEGACY_KEY_VALUE_FORMAT@2",
    "EXPOSE_PROTO_CASING@3",
    "EXPOSE_INVALID_FORMAT@3",
    "CONSISTENT_INSTRUCTION_CASING@4",
    "MULTIPLE_INSTRUCTIONS_DISALLOWED@5",
  ]) {
    assert.ok(codes.includes(c), `${c} in ${codes.join(" ")}`);
  }
  assert.equal(codes.length, 5);
});
