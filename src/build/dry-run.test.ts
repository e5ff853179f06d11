import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { hasCode } from "../common/errors.js";
import { DirContext, loadIgnorePatterns } from "../context/index.js";
import { envFromPairs, expandWord, parseDockerfile } from "../dockerfile/index.js";
import { emptyImage } from "../image/index.js";
import type { Image } from "../image/types.js";
import { planBuild } from "./dry-run.js";
import type { BuildOptions } from "./options.js";

const amd64 = { os: "linux", architecture: "amd64" };

/** A base image whose config sets `Env` (nothing else of it is read by the dry run). */
function baseWithEnv(env: string[]): Image {
  const img = emptyImage(amd64, "oci");
  return { ...img, config: { ...img.config, config: { ...img.config.config, Env: env } } };
}

/** Writes a context (files + optional .dockerignore); `done()` plans `dockerfile` in it, resolving or rejecting like the dry run. */
async function dryRun(
  dockerfile: string,
  files: Record<string, string>,
  buildArgs: Record<string, string> = {},
): Promise<{ ctx: string; done: () => Promise<unknown> }> {
  const ctx = await mkdtemp(path.join(tmpdir(), "kiln-dryrun-"));
  for (const [name, body] of Object.entries({ Dockerfile: dockerfile, ...files })) {
    await mkdir(path.dirname(path.join(ctx, name)), { recursive: true });
    await writeFile(path.join(ctx, name), body);
  }
  const df = parseDockerfile(dockerfile);
  const context = await DirContext.open(ctx, await loadIgnorePatterns(ctx, path.join(ctx, "Dockerfile")));
  const opts = { noPush: true, destinations: [], buildArgs, dockerfileName: "Dockerfile" } as unknown as BuildOptions;
  const done = () =>
    planBuild({
      opts,
      stages: df.stages,
      allStages: df.stages,
      expandFrom: (s) => expandWord(s, envFromPairs(new Map()), df.escapeToken).value,
      pull: () => Promise.resolve(baseWithEnv(["FROMBASE=base.txt"])),
      report: () => undefined,
      context,
      argDefaults: new Map([["GLOBAL", "global.txt"]]),
      escapeToken: df.escapeToken,
    });
  return { ctx, done };
}

const rejectsWith = (p: Promise<unknown>, code: string, re: RegExp) =>
  assert.rejects(p, (e: unknown) => {
    assert.ok(hasCode(e, code), String(e));
    assert.match((e as Error).message, re);
    return true;
  });

test("every COPY/ADD source found in the context: the plan passes and nothing is written", async () => {
  const df = [
    "FROM base AS build",
    "ARG GLOBAL",
    "ARG WHICH=plain.txt",
    "ENV SUB=dir",
    "COPY plain.txt $WHICH ${SUB}/ *.md $FROMBASE $GLOBAL /app/",
    "COPY --from=build /nowhere /x",
    "ADD https://example.invalid/file.tgz /dl/",
    "COPY <<EOF /inline.txt\nhello\nEOF",
    "COPY --parents missing-*/x /p/",
    "FROM build",
    "COPY $SUB/a.txt /inherited-env",
    "",
  ].join("\n");
  const files = {
    "plain.txt": "p",
    "dir/a.txt": "a",
    "readme.md": "r",
    "base.txt": "b",
    "global.txt": "g",
  };
  const { ctx, done } = await dryRun(df, files);
  try {
    await done();
    const listing = (await readdir(ctx, { recursive: true })).sort();
    assert.deepEqual(listing, ["Dockerfile", ...Object.keys(files), "dir"].sort(), "no file was written");
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
});

test("a missing source fails like the build: Dockerfile:line, the instruction, the path", async () => {
  const { ctx, done } = await dryRun("FROM base\nRUN true\nCOPY present.txt missing.txt /x/\n", {
    "present.txt": "p",
  });
  try {
    await rejectsWith(
      done(),
      "COPY_SOURCE_NOT_FOUND",
      /^Dockerfile:3: COPY present\.txt missing\.txt \/x\/: "\/missing\.txt": not found in the build context \(or excluded by \.dockerignore\)$/,
    );
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
});

test("a source excluded by .dockerignore is missing; a variable picks the source (build-arg over default)", async () => {
  const ignored = await dryRun("FROM base\nADD secret.env /etc/\n", { "secret.env": "s", ".dockerignore": "*.env\n" });
  const byArg = await dryRun("FROM base\nARG SRC=there.txt\nCOPY $SRC /x\n", { "there.txt": "t" }, { SRC: "gone.txt" });
  try {
    await rejectsWith(
      ignored.done(),
      "COPY_SOURCE_NOT_FOUND",
      /^Dockerfile:2: ADD secret\.env \/etc\/: "\/secret\.env"/,
    );
    await rejectsWith(byArg.done(), "COPY_SOURCE_NOT_FOUND", /^Dockerfile:3: COPY \$SRC \/x: "\/gone\.txt"/);
  } finally {
    await rm(ignored.ctx, { recursive: true, force: true });
    await rm(byArg.ctx, { recursive: true, force: true });
  }
});

test("wildcards that match nothing fail (no source files), in a later stage too", async () => {
  const { ctx, done } = await dryRun("FROM base AS a\nCOPY f /f\nFROM a\nCOPY *.go /src/\n", { f: "f" });
  try {
    await rejectsWith(
      done(),
      "COPY_NO_SOURCE",
      /^Dockerfile:4: COPY \*\.go \/src\/: COPY: no source files were specified/,
    );
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
});

test("a git source's bad URL options and a --checksum that is no commit fail without fetching", async () => {
  for (const [line, code, re] of [
    ["ADD https://git.invalid/r.git?tag=v1&depth=1 /x/", "ADD_GIT_INVALID", /unknown git URL option "depth"/],
    ["ADD --checksum=sha256:abc https://git.invalid/r.git#v1 /x/", "ADD_CHECKSUM_INVALID", /must be a commit hash/],
  ] as const) {
    const { ctx, done } = await dryRun(`FROM base\n${line}\n`, {});
    try {
      await rejectsWith(done(), code, new RegExp(`^Dockerfile:2: .*${re.source}`));
    } finally {
      await rm(ctx, { recursive: true, force: true });
    }
  }
});

test("a digest file at an https URL is shown by its host only: no path, signature or credentials", async () => {
  const ctx = await mkdtemp(path.join(tmpdir(), "kiln-dryrun-"));
  try {
    const dockerfile = "FROM scratch\n";
    await writeFile(path.join(ctx, "Dockerfile"), dockerfile);
    const df = parseDockerfile(dockerfile);
    const messages: string[] = [];
    const opts = {
      noPush: true,
      destinations: [],
      buildArgs: {},
      dockerfileName: "Dockerfile",
      digestFile: "https://ci:p@ss-SECRET@bucket.s3.example.com/d/digest?X-Amz-Signature=SIGSECRET",
      imageNameWithDigestFile: "/tmp/kiln-out/name-digest",
    } as unknown as BuildOptions;
    const { plan } = await planBuild({
      opts,
      stages: df.stages,
      allStages: df.stages,
      expandFrom: (s) => s,
      pull: () => Promise.resolve(baseWithEnv([])),
      report: (e) => {
        if (e.kind === "info") messages.push(e.message);
      },
      context: await DirContext.open(ctx, []),
      argDefaults: new Map(),
      escapeToken: df.escapeToken,
    });
    assert.ok(messages.includes("Dry run: would write file https://bucket.s3.example.com/…"), messages.join("\n"));
    assert.ok(messages.includes("Dry run: would write file /tmp/kiln-out/name-digest"));
    assert.doesNotMatch(JSON.stringify([messages, plan.outputs]), /SECRET|ci:|digest\?/);
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
});
