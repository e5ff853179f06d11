/**
 * The differential harness: a real registry serving the stand-in bases, a real dockerd, and for each case a
 * `docker build` (BuildKit) and a kiln build of the same (rewritten) Dockerfile, context and build args, both
 * exported as docker-archives, read by the test's own tar reader and compared.
 */
import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import * as path from "node:path";
import { busyboxOciLayout, debianOciLayout, pushLayoutToRegistry } from "../support/base-images.js";
import { startDockerd, type TestDockerd } from "../support/dockerd.js";
import { runKiln } from "../support/kiln-cli.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { removeDir, tempDir } from "../support/tmp.js";
import { compareImages } from "./compare.js";
import { kanikoIntegrationDir, resolvedFroms, type DiffCase, type StandIn } from "./corpus.js";
import { readDockerArchive } from "./image-tree.js";
import { KNOWN_DIFFERENCES } from "./known.js";
import { rewriteDockerfile } from "./rewrite.js";
import { startUrlServer, type UrlServer } from "./url-server.js";

/** Outcome of one case. */
export type CaseStatus =
  | "identical" // same tree, config and layer count
  | "both-fail" // both builders rejected the build
  | "differs" // an unexplained difference: fails the run
  | "known" // a difference listed in known.ts
  | "unsupported" // kiln said "not implemented yet"
  | "skipped"; // not runnable here (reason given)

/** One row of the table. */
export interface CaseResult {
  name: string;
  status: CaseStatus;
  details: string[];
  seconds: number;
  /** Seconds spent in docker (build + save), kiln (build) and reading + comparing both archives. */
  phases?: { docker: number; kiln: number; compare: number };
}

/** A running harness. */
export interface Harness {
  registry: TestRegistry;
  dockerd: TestDockerd;
  urls: UrlServer;
  work: string;
  refFor(s: StandIn): string;
  stop(): Promise<void>;
}

/** Starts the registry (with both stand-ins pushed), the URL stand-in server and dockerd. */
export async function startHarness(): Promise<Harness> {
  const work = await tempDir("differential");
  const registry = await startRegistry();
  const urls = await startUrlServer();
  let dockerd: TestDockerd | undefined;
  try {
    const [busybox, debian] = await Promise.all([busyboxOciLayout(), debianOciLayout()]);
    await pushLayoutToRegistry(busybox, registry.host, "busybox:latest");
    await pushLayoutToRegistry(debian, registry.host, "debian:bookworm");
    dockerd = await startDockerd();
    await buildOnbuildBase(dockerd, registry.host, urls.base);
  } catch (e) {
    await dockerd?.stop();
    await registry.stop();
    await urls.stop();
    await removeDir(work);
    throw e;
  }
  const d = dockerd;
  return {
    registry,
    dockerd: d,
    urls,
    work,
    refFor: (s) => refForHost(registry.host, s),
    stop: async () => {
      await d.stop();
      await registry.stop();
      await urls.stop();
      await removeDir(work);
    },
  };
}

function refForHost(host: string, s: StandIn): string {
  if (s === "busybox") return `${host}/busybox:latest`;
  if (s === "debian") return `${host}/debian:bookworm`;
  return `${host}/onbuild-base:latest`;
}

/**
 * kaniko's harness builds `Dockerfile_onbuild_base` and pushes it as `onbuild-base` before the run; so does
 * this one (with docker, so both builders start `Dockerfile_test_onbuild` from the same base).
 */
async function buildOnbuildBase(dockerd: TestDockerd, host: string, urlBase: string): Promise<void> {
  const source = path.join(kanikoIntegrationDir(), "dockerfiles", "Dockerfile_onbuild_base");
  const text = rewriteDockerfile(await readFile(source, "utf8"), undefined, (s) => refForHost(host, s), urlBase);
  const dir = await tempDir("onbuild-base");
  try {
    await writeFile(path.join(dir, "Dockerfile"), text.text);
    const tag = refForHost(host, "onbuild-base");
    const b = await dockerd.docker(["build", "--network", "host", "-t", tag, dir], { env: { DOCKER_BUILDKIT: "1" } });
    if (b.code !== 0) throw new Error(`building onbuild-base failed: ${tail(b.stderr)}`);
    const p = await dockerd.docker(["push", tag]);
    if (p.code !== 0) throw new Error(`pushing onbuild-base failed: ${tail(p.stderr)}`);
    await dockerd.docker(["rmi", "-f", tag]);
  } finally {
    await removeDir(dir);
  }
}

function tail(s: string, lines = 3): string {
  return s.trim().split("\n").slice(-lines).join(" ⏎ ").slice(0, 400);
}

/** Builds one case with both builders and compares the results. */
export async function runCase(h: Harness, c: DiffCase): Promise<CaseResult> {
  const t0 = Date.now();
  const phases = { docker: 0, kiln: 0, compare: 0 };
  const done = (status: CaseStatus, details: string[]): CaseResult => ({
    name: c.name,
    status,
    details,
    seconds: (Date.now() - t0) / 1000,
    phases,
  });
  if (c.skip !== undefined) return done("skipped", [c.skip]);

  const dir = path.join(h.work, c.name.replace(/[^A-Za-z0-9._-]/g, "_"));
  await mkdir(dir, { recursive: true });
  try {
    const original = await readFile(c.dockerfile, "utf8");
    const rewritten = rewriteDockerfile(original, resolvedFroms(c), (s) => h.refFor(s), h.urls.base);
    let dockerfile = c.dockerfile;
    if (rewritten.changed) {
      // Same base name, so a `<Dockerfile>.dockerignore` next to it still applies (copied along).
      dockerfile = path.join(dir, "df", path.basename(c.dockerfile));
      await mkdir(path.dirname(dockerfile), { recursive: true });
      await writeFile(dockerfile, rewritten.text);
      if (existsSync(`${c.dockerfile}.dockerignore`)) {
        await copyFile(`${c.dockerfile}.dockerignore`, `${dockerfile}.dockerignore`);
      }
    }
    const tag = `kilndiff/${path.basename(dir).toLowerCase()}:latest`;
    const dockerTar = path.join(dir, "docker.tar");
    const kilnTar = path.join(dir, "kiln.tar");
    const args = c.buildArgs.flatMap((a) => ["--build-arg", a]);

    const dockerBuild = (async () => {
      const start = Date.now();
      const b = await h.dockerd.docker(
        ["build", "--no-cache", "--network", "host", "-f", dockerfile, "-t", tag, ...args, ...c.dockerFlags, c.context],
        { env: { DOCKER_BUILDKIT: "1" } },
      );
      if (b.code !== 0) return { ok: false, log: b.stderr + b.stdout };
      const s = await h.dockerd.docker(["save", "-o", dockerTar, tag]);
      await h.dockerd.docker(["rmi", "-f", tag]);
      phases.docker = (Date.now() - start) / 1000;
      return { ok: s.code === 0, log: s.stderr };
    })();
    const kilnBuild = (async () => {
      const start = Date.now();
      const r = await runKiln([
        "build",
        "--dockerfile",
        dockerfile,
        "--context",
        c.context,
        "--no-push",
        "--destination",
        tag,
        "--tar-path",
        kilnTar,
        "--insecure-pull",
        "--kaniko-dir",
        path.join(dir, "kiln-state"),
        ...args,
        ...c.kilnFlags,
      ]);
      phases.kiln = (Date.now() - start) / 1000;
      return { ok: r.code === 0, code: r.code, log: r.stderr + r.stdout };
    })();
    const [d, k] = await Promise.all([dockerBuild, kilnBuild]);

    // Not exit code 2 alone: a RUN step's own exit status 2 propagates as kiln's exit code.
    const unsupported = !k.ok && /not implemented yet/.test(k.log);
    if (unsupported) return done("unsupported", [tail(k.log, 1)]);
    if (!d.ok && !k.ok) return done("both-fail", [`docker: ${tail(d.log, 1)}`, `kiln: ${tail(k.log, 1)}`]);
    let diffs: string[];
    if (!d.ok) diffs = [`docker failed, kiln succeeded: ${tail(d.log)}`];
    else if (!k.ok) diffs = [`kiln failed (exit ${k.code}), docker succeeded: ${tail(k.log)}`];
    else {
      const start = Date.now();
      diffs = compareImages(await readDockerArchive(dockerTar), await readDockerArchive(kilnTar), c.name);
      phases.compare = (Date.now() - start) / 1000;
    }

    const known = KNOWN_DIFFERENCES[c.name];
    if (diffs.length === 0) {
      return done("identical", known !== undefined ? ["stale known-difference entry: remove it from known.ts"] : []);
    }
    return done(known !== undefined ? "known" : "differs", known !== undefined ? [known, ...diffs] : diffs);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
