/**
 * The layer-cache benchmark (issue #8): cached rebuilds of the 20-step and multi-stage workloads, kiln
 * against BuildKit's cached rebuild and against kaniko-style probing, in one invocation, printing medians
 * and kiln/peer ratios.
 *
 *   npm run build && npx tsx bench/cache-rebuild.ts [--runs N] [--only steps-20,multistage,steps-20-edit]
 *                             [--builders kiln,kiln-oci-cache,kaniko-style,kiln-layer-store,docker-buildkit]
 *
 * Scenarios (each builder builds once untimed to fill its cache, then N timed rebuilds, builders alternating):
 * - `steps-20` / `multistage`, "no change": the same context again.
 * - `steps-20-edit`, "one file changed": steps-20 with `COPY src/app.txt` after step 10; the file is rewritten
 *   before every rebuild, so the COPY and the 10 RUN steps after it rebuild.
 * Builders (every build also pushes its image to a loopback registry, as in bench/run.ts):
 * - `kiln`: `--cache=true --cache-copy-layers`, registry cache repository on the same registry.
 * - `kiln-oci-cache`: the same with `--cache-repo=oci:DIR`, a cache on local disk like BuildKit's (the image is
 *   still pushed to the registry).
 * - `kaniko-style`: the same kiln with the benchmark-only switch `KILN_BENCH_KANIKO_CACHE_PROBING=1`, which
 *   stops looking entries up after a stage's first miss, as kaniko does ("kaniko cannot read layers from the
 *   cache after a cache miss"). Only the probing is emulated, not kaniko's other costs (full base extraction).
 * - `kiln-layer-store`: `kiln` plus `--layer-store` (one store for all its builds): after a miss, the
 *   stage root is mounted from stored layers instead of extracted (the one-file-edit case).
 * - `docker-buildkit`: `docker build` (BuildKit, its local cache) + `docker push`, dockerd started here.
 * kiln runs on the executor image's Node.js (bench/lib/kiln-node.ts; `KILN_BENCH_NODE` overrides).
 * Needs root (dockerd, kiln's chroot back-end) and `npm run build` first (kiln runs from dist/).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { busyboxOciLayout, debianOciLayout, pushLayoutToRegistry } from "../test/support/base-images.js";
import { startRegistry } from "../test/support/registry.js";
import { dockerBuilder, removeTree, type Builder, type BuildSpec } from "./lib/builders.js";
import { startDockerd, type Dockerd } from "./lib/env.js";
import { kilnNode } from "./lib/kiln-node.js";
import { parsePhases, timed, type Sample } from "./lib/measure.js";
import { markdownTable, ratios, stats, type RowResult, type RunRecord } from "./lib/report.js";

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.dirname(BENCH_DIR);
const WORK = path.join(REPO, ".tmp", "bench-cache");

interface Scenario {
  name: string;
  variant: string;
  title: string;
  /** Writes the context into `dir`. */
  context(dir: string): void;
  /** Called before every timed rebuild (untimed): the change under test. */
  change(dir: string, run: number): void;
  buildArgs(b: { busybox: string; debian: string }): Record<string, string>;
}

function workloadDockerfile(name: string): string {
  return readFileSync(path.join(BENCH_DIR, "workloads", name, "Dockerfile"), "utf8");
}

const SCENARIOS: Scenario[] = [
  {
    name: "steps-20",
    variant: "no change",
    title: "busybox: 20 small RUN steps, rebuilt unchanged",
    context: (dir) => writeFileSync(path.join(dir, "Dockerfile"), workloadDockerfile("steps-20")),
    change: () => undefined,
    buildArgs: (b) => ({ BASE: b.busybox }),
  },
  {
    name: "multistage",
    variant: "no change",
    title: "multi-stage: debian build stage (5,000 files + 200 MB) → busybox + 1 file, rebuilt unchanged",
    context: (dir) => writeFileSync(path.join(dir, "Dockerfile"), workloadDockerfile("multistage")),
    change: () => undefined,
    buildArgs: (b) => ({ BASE: b.debian, FINAL: b.busybox }),
  },
  {
    name: "steps-20-edit",
    variant: "one file changed",
    title: "steps-20 with COPY src/app.txt after step 10; app.txt edited before each rebuild",
    context: (dir) => {
      const lines = workloadDockerfile("steps-20").trimEnd().split("\n");
      const at = lines.findIndex((l) => l.startsWith("RUN echo step11 "));
      lines.splice(at, 0, "COPY src/app.txt /app/app.txt");
      writeFileSync(path.join(dir, "Dockerfile"), lines.join("\n") + "\n");
      mkdirSync(path.join(dir, "src"), { recursive: true });
      writeFileSync(path.join(dir, "src", "app.txt"), "version 0\n");
    },
    change: (dir, run) => writeFileSync(path.join(dir, "src", "app.txt"), `version ${run + 1}\n`),
    buildArgs: (b) => ({ BASE: b.busybox }),
  },
];

interface Args {
  runs: number;
  only: string[] | null;
  builders: string[] | null;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { runs: 3, only: null, builders: null };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    const next = (): string => {
      const n = argv[++i];
      if (n === undefined) throw new Error(`${v} needs a value`);
      return n;
    };
    if (v === "--runs") a.runs = Number(next());
    else if (v === "--only") a.only = next().split(",");
    else if (v === "--builders") a.builders = next().split(",");
    else throw new Error(`unknown argument ${v} (see bench/cache-rebuild.ts)`);
  }
  return a;
}

/**
 * kiln with its registry layer cache; `kanikoProbing` sets the benchmark-only switch; `layerStore` adds
 * `--layer-store=DIR` (kept across the builds), so that the filesystem a step after a miss needs is
 * mounted from stored layers instead of extracted.
 */
function kilnCacheBuilder(
  name: string,
  node: string,
  stateDir: string,
  kanikoProbing: boolean,
  opts: { layerStore?: string; ociCache?: string } = {},
): Builder {
  const { layerStore, ociCache } = opts;
  return {
    name,
    prepare: async () => {
      removeTree(stateDir);
      mkdirSync(stateDir, { recursive: true });
      for (const dir of [layerStore, ociCache]) {
        if (dir === undefined) continue;
        removeTree(dir);
        mkdirSync(dir, { recursive: true });
      }
    },
    build: async (spec) => {
      const args = [
        path.join(REPO, "bin", "kiln"),
        "build",
        "--context",
        spec.context,
        ...Object.entries(spec.buildArgs).flatMap(([k, v]) => ["--build-arg", `${k}=${v}`]),
        "--destination",
        spec.destination,
        "--insecure",
        "--insecure-pull",
        "--verbosity=debug",
        "--kaniko-dir",
        stateDir,
        "--cache=true",
        "--cache-copy-layers",
        `--cache-repo=${ociCache !== undefined ? `oci:${ociCache}` : (spec.cacheRepo ?? "")}`,
        ...(layerStore !== undefined ? [`--layer-store=${layerStore}`] : []),
      ];
      const env = { ...process.env, ...(kanikoProbing ? { KILN_BENCH_KANIKO_CACHE_PROBING: "1" } : {}) };
      const s = await timed(node, args, { cwd: REPO, env, timeoutMs: 10 * 60_000 });
      return { ...s, phases: parsePhases(s.stderr + s.stdout) };
    },
    cleanup: async () => undefined,
  };
}

function failure(r: Sample): string {
  const text = (r.stderr + "\n" + r.stdout).trim().split("\n");
  const line = text.filter((l) => /error|fail/i.test(l)).pop() ?? text.pop() ?? "";
  return `exit ${r.code}: ${line.trim().slice(0, 160)}`;
}

function hits(r: Sample): number {
  return (r.stderr.match(/Using caching version of cmd/g) ?? []).length;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  removeTree(WORK);
  mkdirSync(WORK, { recursive: true });
  const registry = await startRegistry();
  let dockerd: Dockerd | undefined;
  try {
    const scenarios = SCENARIOS.filter((s) => args.only === null || args.only.includes(s.name));
    const needDebian = scenarios.some((s) => s.name === "multistage");
    await pushLayoutToRegistry(await busyboxOciLayout(), registry.host, "bench/busybox:latest");
    if (needDebian) await pushLayoutToRegistry(await debianOciLayout(), registry.host, "bench/debian:bookworm");
    const bases = {
      busybox: `${registry.host}/bench/busybox:latest`,
      debian: `${registry.host}/bench/debian:bookworm`,
    };
    const want = (n: string): boolean => args.builders === null || args.builders.includes(n);
    const builders: Builder[] = [];
    const node = kilnNode(REPO);
    console.error(`[cache-bench] kiln runs on Node ${node.version} (${node.origin})`);
    const kiln = (name: string, kaniko: boolean, opts: { layerStore?: string; ociCache?: string } = {}): Builder =>
      kilnCacheBuilder(name, node.bin, path.join(WORK, `${name}-state`), kaniko, opts);
    if (want("kiln")) builders.push(kiln("kiln", false));
    if (want("kiln-oci-cache"))
      builders.push(kiln("kiln-oci-cache", false, { ociCache: path.join(WORK, "oci-cache") }));
    if (want("kaniko-style")) builders.push(kiln("kaniko-style", true));
    if (want("kiln-layer-store"))
      builders.push(kiln("kiln-layer-store", false, { layerStore: path.join(WORK, "layer-store") }));
    if (want("docker-buildkit")) {
      dockerd = await startDockerd(path.join(WORK, "dockerd"), registry.host);
      builders.push(dockerBuilder("buildkit", dockerd));
    }
    const rows: RowResult[] = [];
    for (const sc of scenarios) {
      const per: Record<string, RunRecord[]> = {};
      const notes: Record<string, string> = {};
      const specs = new Map<string, BuildSpec>();
      for (const b of builders) {
        const ctx = path.join(WORK, "ctx", `${sc.name}-${b.name}`);
        mkdirSync(ctx, { recursive: true });
        sc.context(ctx);
        const dest = `${registry.host}/bench-cache/${sc.name}-${b.name}:latest`;
        const spec: BuildSpec = {
          context: ctx,
          buildArgs: sc.buildArgs(bases),
          destination: dest,
          bases: [],
          cache: true,
          cacheRepo: `${registry.host}/bench-cache/${sc.name}-${b.name}-cache`,
        };
        specs.set(b.name, spec);
        per[b.name] = [];
        await b.prepare("cold", spec);
        const first = await b.build(spec);
        console.error(`[cache-bench] ${sc.name} ${b.name}: first build ${(first.wallMs / 1000).toFixed(2)} s`);
        if (first.code !== 0) notes[b.name] = failure(first);
      }
      for (let run = 0; run < args.runs; run++) {
        for (const b of builders) {
          const spec = specs.get(b.name) as BuildSpec;
          if (notes[b.name]) continue;
          sc.change(spec.context, run);
          const r = await b.build(spec);
          const hitNote = b.name === "docker-buildkit" ? "" : `, ${hits(r)} cache hits`;
          console.error(`[cache-bench] ${sc.name} ${b.name}: rebuild ${(r.wallMs / 1000).toFixed(2)} s${hitNote}`);
          if (r.code !== 0) notes[b.name] = failure(r);
          else per[b.name]?.push({ wallMs: r.wallMs, cpuMs: r.cpuMs, rssKb: r.rssKb, phases: r.phases ?? {} });
        }
      }
      const stat: RowResult["builders"] = {};
      for (const b of builders) stat[b.name] = stats(per[b.name] ?? [], notes[b.name]);
      rows.push({ workload: sc.name, title: sc.title, variant: sc.variant, builders: stat, ratios: ratios(stat) });
      for (const b of builders) await b.cleanup(specs.get(b.name) as BuildSpec);
    }
    const goals = rows
      .filter((r) => r.ratios["docker-buildkit"] !== undefined)
      .map((r) => {
        const x = r.ratios["docker-buildkit"];
        const fig = x === null || x === undefined ? "n/a" : `${x.toFixed(2)}×`;
        return `| ${r.workload} (${r.variant}) | kiln ≤ 1.0× BuildKit cached rebuild | ${fig} | ${x === null || x === undefined ? "—" : x <= 1 ? "met" : "missed"} |`;
      });
    console.log(
      [
        `# kiln cache benchmark — ${new Date().toISOString()} (${args.runs} timed rebuilds per builder, medians; kiln on Node ${node.version}, ${node.origin})`,
        "",
        markdownTable(rows),
        "",
        "| scenario | goal | figure | status |",
        "|---|---|---:|---|",
        ...goals,
        "",
      ].join("\n"),
    );
  } finally {
    await dockerd?.stop();
    await registry.stop();
    removeTree(WORK);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
