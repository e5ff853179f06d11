/**
 * The builders under test: kiln (bin/kiln from dist/) and its peers — buildah (chroot isolation; vfs and
 * overlay storage), docker classic (DOCKER_BUILDKIT=0) and BuildKit inside a real dockerd. Each build is a
 * build followed by a push to the bench registry, so every builder does the same work kiln does.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { DOCKER_CLI, type Dockerd } from "./env.js";
import { DaemonProbe, parsePhases, sumSamples, timed, type Sample } from "./measure.js";

/** One build to run. */
export interface BuildSpec {
  /** Build context directory (holds the Dockerfile). */
  context: string;
  buildArgs: Record<string, string>;
  /** `host/repo:tag` to push to. */
  destination: string;
  /** Base image references the workload uses (pre-pulled for warm variants). */
  bases: string[];
  /** Build with the builder's layer cache enabled (cache-rebuild workload). */
  cache?: boolean;
  /** kiln only: `host/repo` of the registry cache (`--cache-repo`), the same for a build and its rebuild. */
  cacheRepo?: string;
  /** kiln only: extra flags. */
  kilnFlags?: string[];
  /** kiln only: skip the push (with `kilnFlags` giving another output). */
  noPush?: boolean;
  /** kiln only: extra environment variables (benchmark switches such as `KILN_BENCH_NO_PUSH_AHEAD`). */
  kilnEnv?: Record<string, string>;
}

/** A measured build: the sample plus kiln's per-phase profile (ms per phase) when the builder is kiln. */
export interface BuildResult extends Sample {
  phases?: Record<string, number>;
}

/** "cold": no base image or cache local before the run; "warm": bases local, no build cache. */
export type Variant = "cold" | "warm";

/** A builder the harness can drive. */
export interface Builder {
  name: string;
  /** Untimed: puts local state into the variant's starting condition. */
  prepare(variant: Variant, spec: BuildSpec): Promise<void>;
  /** Timed: build then push. */
  build(spec: BuildSpec): Promise<BuildResult>;
  /** Untimed: removes what the build left behind (built images, state dirs). */
  cleanup(spec: BuildSpec): Promise<void>;
}

function quiet(cmd: string, args: string[], env?: NodeJS.ProcessEnv): void {
  spawnSync(cmd, args, { env: env ?? process.env, stdio: "ignore" });
}

function mountsBelow(dir: string): string[] {
  const text = readFileSync("/proc/self/mountinfo", "utf8");
  return text
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((p) => p === dir || p.startsWith(dir + "/"))
    .sort((a, b) => b.length - a.length);
}

/** Removes a state directory, unmounting anything a builder left mounted below it first. */
export function removeTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const m of mountsBelow(path.resolve(dir))) quiet("umount", ["-l", m]);
  rmSync(dir, { recursive: true, force: true });
}

function buildArgFlags(args: Record<string, string>): string[] {
  return Object.entries(args).flatMap(([k, v]) => ["--build-arg", `${k}=${v}`]);
}

/** Where kiln's warm variant keeps its layer store (`--layer-store`) under the bench state root. */
export function kilnStoreDir(stateRoot: string): string {
  return path.join(stateRoot, "kiln-layer-store");
}

/** Note on kiln's warm rows: what "bases local" means for kiln. */
export const KILN_WARM_NOTE = "--layer-store filled by an untimed `FROM base` + `RUN true` build; no build cache";

/**
 * kiln: `bin/kiln build … --destination … --insecure --insecure-pull --verbosity=debug`, run by `node`
 * (bench/lib/kiln-node.ts: the executor image's Node.js).
 *
 * Variants: "cold" builds with a fresh state dir and no layer store (kiln pulls and extracts every base);
 * "warm" builds with `--layer-store` {@link kilnStoreDir} whose bases an earlier, untimed build stored — a
 * persistent runner's setup, the counterpart of a daemon that already unpacked the base. The store is filled
 * once per base (per bench invocation) by a `FROM base` + `RUN true` build with `--no-push`; the timed build
 * never shares cache with it (kiln's layer cache stays off).
 */
export function kilnBuilder(repo: string, stateRoot: string, node: string = process.execPath): Builder {
  const stateDir = path.join(stateRoot, "kiln-state");
  const store = kilnStoreDir(stateRoot);
  const fillCtx = path.join(stateRoot, "kiln-store-fill");
  /** Bases the store holds (filled by this builder since the store dir was created). */
  const stored = new Set<string>();
  let warm = false;
  const kilnArgs = (context: string, extra: string[]): string[] => [
    path.join(repo, "bin", "kiln"),
    "build",
    "--context",
    context,
    "--dockerfile",
    path.join(context, "Dockerfile"),
    "--insecure",
    "--insecure-pull",
    "--verbosity=debug",
    "--kaniko-dir",
    stateDir,
    ...extra,
  ];
  const fill = async (base: string): Promise<void> => {
    mkdirSync(fillCtx, { recursive: true });
    writeFileSync(path.join(fillCtx, "Dockerfile"), "ARG BASE\nFROM ${BASE}\nRUN true\n");
    const r = await timed(
      node,
      kilnArgs(fillCtx, ["--build-arg", `BASE=${base}`, "--no-push", "--layer-store", store]),
      { cwd: repo },
    );
    removeTree(stateDir);
    mkdirSync(stateDir, { recursive: true });
    if (r.code !== 0) {
      const last = (r.stderr + r.stdout).trim().split("\n").pop() ?? "";
      throw new Error(`kiln could not fill the layer store with ${base}: exit ${r.code}: ${last}`);
    }
    stored.add(base);
  };
  return {
    name: "kiln",
    prepare: async (variant, spec) => {
      removeTree(stateDir);
      mkdirSync(stateDir, { recursive: true });
      warm = variant === "warm";
      if (!warm) return;
      if (!existsSync(store)) stored.clear();
      for (const b of spec.bases) if (!stored.has(b)) await fill(b);
    },
    build: async (spec) => {
      const args = kilnArgs(spec.context, [
        ...buildArgFlags(spec.buildArgs),
        ...(spec.noPush ? ["--no-push"] : ["--destination", spec.destination]),
        ...(spec.cache
          ? ["--cache=true", `--cache-repo=${spec.cacheRepo ?? spec.destination.replace(/:[^:/]*$/, "") + "-cache"}`]
          : []),
        ...(warm ? ["--layer-store", store] : []),
        ...(spec.kilnFlags ?? []),
      ]);
      const s = await timed(node, args, {
        cwd: repo,
        ...(spec.kilnEnv ? { env: { ...process.env, ...spec.kilnEnv } } : {}),
      });
      return { ...s, phases: parsePhases(s.stderr + s.stdout) };
    },
    cleanup: async () => removeTree(stateDir),
  };
}

/** buildah with chroot isolation on the given storage driver, storage under `stateRoot`. */
export function buildahBuilder(driver: "vfs" | "overlay", stateRoot: string, env: NodeJS.ProcessEnv): Builder {
  const root = path.join(stateRoot, `buildah-${driver}`);
  const global = ["--storage-driver", driver, "--root", path.join(root, "root"), "--runroot", path.join(root, "run")];
  const policy = env["BENCH_POLICY"] as string;
  const buildah = (args: string[]): void => quiet("buildah", [...global, ...args], env);
  return {
    name: `buildah-${driver}`,
    prepare: async (variant, spec) => {
      buildah(["rm", "--all"]);
      if (variant === "cold") buildah(["rmi", "--all", "--force"]);
      else
        for (const b of spec.bases) buildah(["pull", "--quiet", "--tls-verify=false", "--signature-policy", policy, b]);
    },
    build: async (spec) => {
      const bud = await timed(
        "buildah",
        [
          ...global,
          "bud",
          "--isolation",
          "chroot",
          "--tls-verify=false",
          "--signature-policy",
          policy,
          ...(spec.cache ? ["--layers"] : []),
          ...buildArgFlags(spec.buildArgs),
          "-f",
          path.join(spec.context, "Dockerfile"),
          "-t",
          spec.destination,
          spec.context,
        ],
        { env },
      );
      if (bud.code !== 0) return bud;
      const push = await timed(
        "buildah",
        [
          ...global,
          "push",
          "--tls-verify=false",
          "--signature-policy",
          policy,
          spec.destination,
          `docker://${spec.destination}`,
        ],
        { env },
      );
      return sumSamples(bud, push);
    },
    cleanup: async (spec) => {
      buildah(["rm", "--all"]);
      if (!spec.cache) buildah(["rmi", "--force", spec.destination]);
    },
  };
}

/** docker build (classic or BuildKit) + docker push against a running dockerd. */
export function dockerBuilder(kind: "classic" | "buildkit", dockerd: Dockerd): Builder {
  const env = { ...process.env, DOCKER_HOST: dockerd.host, DOCKER_BUILDKIT: kind === "buildkit" ? "1" : "0" };
  const docker = (args: string[]): void => quiet(DOCKER_CLI, args, env);
  const probe = new DaemonProbe(() => dockerd.pids());
  const withDaemon = (s: Sample, d: { cpuMs: number; rssKb: number }): Sample => ({
    ...s,
    cpuMs: s.cpuMs + d.cpuMs,
    rssKb: Math.max(s.rssKb, d.rssKb),
  });
  return {
    name: kind === "buildkit" ? "docker-buildkit" : "docker-classic",
    prepare: async (variant, spec) => {
      if (variant === "cold") {
        docker(["system", "prune", "--all", "--force"]);
        docker(["builder", "prune", "--all", "--force"]);
      } else {
        docker(["builder", "prune", "--all", "--force"]);
        for (const b of spec.bases) docker(["pull", "--quiet", b]);
      }
    },
    build: async (spec) => {
      probe.start();
      const b = await timed(
        DOCKER_CLI,
        [
          "build",
          "--network",
          "host",
          ...(spec.cache ? [] : ["--no-cache"]),
          ...buildArgFlags(spec.buildArgs),
          "-f",
          path.join(spec.context, "Dockerfile"),
          "-t",
          spec.destination,
          spec.context,
        ],
        { env },
      );
      if (b.code !== 0) return withDaemon(b, probe.stop());
      const p = await timed(DOCKER_CLI, ["push", spec.destination], { env });
      return withDaemon(sumSamples(b, p), probe.stop());
    },
    cleanup: async (spec) => {
      if (!spec.cache) docker(["image", "rm", "--force", spec.destination]);
      docker(["container", "prune", "--force"]);
    },
  };
}
