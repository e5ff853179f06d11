/**
 * kiln's benchmark harness (issue #12): the same workloads through kiln and its peers in one invocation,
 * alternating builders run by run, reporting medians (wall, CPU, peak RSS), kiln/peer ratios, kiln's
 * per-phase profile and the issue's goals as met/missed.
 *
 *   bash bench/run.sh [--quick] [--runs N] [--warmup N] [--only w1,w2] [--builders b1,b2|none] [--out DIR]
 *
 * `--only` takes workload names and `pull`, `push`, `primitives`. Writes DIR/latest.json and DIR/latest.md
 * (default bench/results/) after every workload and prints the tables at the end.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { startRegistry } from "../test/support/registry.js";
import {
  buildahBuilder,
  dockerBuilder,
  KILN_WARM_NOTE,
  kilnBuilder,
  kilnStoreDir,
  removeTree,
  type Builder,
  type BuildResult,
  type BuildSpec,
} from "./lib/builders.js";
import { buildahEnv, startDockerd, type Dockerd } from "./lib/env.js";
import { prepareBases } from "./lib/images.js";
import { kilnNode } from "./lib/kiln-node.js";
import { median, timed, type Sample } from "./lib/measure.js";
import {
  goalTable,
  markdownTable,
  phaseTable,
  ratios,
  stats,
  type GoalResult,
  type RowResult,
  type RunRecord,
} from "./lib/report.js";
import { WORKLOADS, pullContext, stageContext, type Bases, type Workload } from "./lib/workloads.js";

interface Args {
  quick: boolean;
  runs: number;
  warmup: number;
  only: string[] | null;
  builders: string[] | null;
  /** Directory for latest.json / latest.md. */
  out: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { quick: false, runs: 3, warmup: 1, only: null, builders: null, out: "" };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    const next = (): string => {
      const n = argv[++i];
      if (n === undefined) throw new Error(`${v} needs a value`);
      return n;
    };
    if (v === "--quick") a.quick = true;
    else if (v === "--runs") a.runs = Number(next());
    else if (v === "--warmup") a.warmup = Number(next());
    else if (v === "--only") a.only = next().split(",");
    else if (v === "--builders") a.builders = next().split(",");
    else if (v === "--out") a.out = path.resolve(next());
    else throw new Error(`unknown argument ${v} (see bench/run.ts)`);
  }
  if (a.quick) {
    a.runs = 1;
    a.warmup = 0;
  }
  return a;
}

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.dirname(BENCH_DIR);
/** Scratch space (state dirs, context copies); KILN_BENCH_WORK lets two invocations run side by side. */
const WORK = process.env["KILN_BENCH_WORK"] || path.join(REPO, ".tmp", "bench");
/** Reference images built once and shared by every invocation. */
const CACHE = path.join(REPO, ".tmp", "bench", "cache");

/** 1-minute load averages seen during the run (the machine may be shared: noise shows here). */
const LOADS: number[] = [];

function log(msg: string): void {
  const load = os.loadavg()[0] ?? 0;
  LOADS.push(load);
  console.error(`[bench ${new Date().toISOString().slice(11, 19)} load ${load.toFixed(1)}] ${msg}`);
}

/** Keeps the generated results in the repository's prettier style (CI runs `prettier --check .`). */
function formatResults(resultsDir: string): void {
  const files = ["latest.json", "latest.md"].map((f) => path.join(resultsDir, f));
  try {
    execFileSync(path.join(REPO, "node_modules", ".bin", "prettier"), ["--write", "--log-level", "silent", ...files]);
  } catch {
    // Formatting is cosmetic: keep the unformatted results.
  }
}

function record(r: Sample & { phases?: Record<string, number> }): RunRecord {
  return { wallMs: r.wallMs, cpuMs: r.cpuMs, rssKb: r.rssKb, ...(r.phases ? { phases: r.phases } : {}) };
}

function failure(r: Sample): string {
  const text = (r.stderr + "\n" + r.stdout).trim().split("\n");
  const line = text.filter((l) => /error|fail|not implemented/i.test(l)).pop() ?? text.pop() ?? "";
  return `exit ${r.code}: ${line.trim().slice(0, 160)}`;
}

function version(cmd: string, args: string[], env?: NodeJS.ProcessEnv): string {
  try {
    return (
      execFileSync(cmd, args, { env: env ?? process.env, encoding: "utf8" })
        .trim()
        .split("\n")[0] ?? ""
    );
  } catch {
    return "unavailable";
  }
}

/** Collected runs per row key ("workload|variant") per builder. */
class Collector {
  readonly runs = new Map<string, Map<string, RunRecord[]>>();
  readonly notes = new Map<string, Map<string, string>>();
  readonly titles = new Map<string, string>();

  private slot<T>(m: Map<string, Map<string, T>>, row: string): Map<string, T> {
    let s = m.get(row);
    if (!s) m.set(row, (s = new Map()));
    return s;
  }

  declare(row: string, title: string, builders: string[]): void {
    this.titles.set(row, title);
    const s = this.slot(this.runs, row);
    for (const b of builders) if (!s.has(b)) s.set(b, []);
  }

  add(row: string, builder: string, r: RunRecord): void {
    const s = this.slot(this.runs, row);
    const list = s.get(builder) ?? [];
    list.push(r);
    s.set(builder, list);
  }

  note(row: string, builder: string, note: string): void {
    this.slot(this.notes, row).set(builder, note);
    this.slot(this.runs, row);
  }

  rows(): RowResult[] {
    const out: RowResult[] = [];
    for (const [row, perBuilder] of this.runs) {
      const [workload, variant] = row.split("|") as [string, string];
      const builders: RowResult["builders"] = {};
      const notes = this.notes.get(row);
      const names = new Set([...perBuilder.keys(), ...(notes?.keys() ?? [])]);
      for (const name of names) builders[name] = stats(perBuilder.get(name) ?? [], notes?.get(name));
      out.push({ workload, title: this.titles.get(row) ?? workload, variant, builders, ratios: ratios(builders) });
    }
    return out;
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const resultsDir = args.out || path.join(BENCH_DIR, "results");
  const t0 = Date.now();
  mkdirSync(WORK, { recursive: true });
  const stateRoot = path.join(WORK, "state");
  removeTree(stateRoot);
  mkdirSync(stateRoot, { recursive: true });

  log("starting the registry");
  const registry = await startRegistry();
  let dockerd: Dockerd | undefined;
  try {
    log("building/pushing reference bases (busybox, debian, debian + 100,000 files)");
    const bases: Bases = await prepareBases(registry.host, CACHE);
    const bEnv = buildahEnv(path.join(WORK, "buildah-conf"), registry.host);

    const want = (name: string): boolean => args.builders === null || args.builders.includes(name);
    const peers: Builder[] = [];
    if (want("buildah-vfs")) peers.push(buildahBuilder("vfs", stateRoot, bEnv));
    if (want("buildah-overlay")) peers.push(buildahBuilder("overlay", stateRoot, bEnv));
    if (want("docker-classic") || want("docker-buildkit")) {
      log("starting dockerd");
      dockerd = await startDockerd(path.join(stateRoot, "dockerd"), registry.host);
      if (want("docker-classic")) peers.push(dockerBuilder("classic", dockerd));
      if (want("docker-buildkit")) peers.push(dockerBuilder("buildkit", dockerd));
    }
    const node = kilnNode(REPO);
    log(`kiln runs on Node ${node.version} (${node.origin})`);
    const kiln = kilnBuilder(REPO, stateRoot, node.bin);
    const col = new Collector();
    const dockerEnv = dockerd ? { ...process.env, DOCKER_HOST: dockerd.host } : process.env;
    const versions = {
      "node (kiln)": `${node.version}, ${node.origin}`,
      "node (bench)": process.version,
      buildah: version("buildah", ["--version"]),
      docker: version("/usr/bin/docker", ["version", "--format", "{{.Server.Version}}"], dockerEnv),
      skopeo: version("skopeo", ["--version"]),
      pigz: version("pigz", ["--version"]),
      zstd: version("zstd", ["--version"]),
    };

    let findMs: number | null = null;
    /** Writes bench/results/latest.{json,md} from what is measured so far; returns the Markdown. */
    const emit = (status: string): string => {
      const rows = col.rows();
      const goals = evaluateGoals(rows, findMs);
      const result = {
        date: new Date().toISOString(),
        durationS: Math.round((Date.now() - t0) / 1000),
        mode: args.quick ? "quick" : "full",
        status,
        runs: args.runs,
        warmup: args.warmup,
        machine: {
          cpus: os.cpus().length,
          cpuModel: os.cpus()[0]?.model ?? "",
          memGiB: Math.round(os.totalmem() / 2 ** 30),
          kernel: os.release(),
          loadAvg1: { min: Math.min(...LOADS), median: median(LOADS), max: Math.max(...LOADS) },
        },
        versions,
        rows,
        goals,
      };
      mkdirSync(resultsDir, { recursive: true });
      writeFileSync(path.join(resultsDir, "latest.json"), JSON.stringify(result, null, 2) + "\n");
      const md = [
        `# kiln benchmark — ${result.date} (${result.mode}, ${status}: ${args.warmup} warm-up + ${args.runs} runs${args.runs > 2 ? ", heavy workloads 2" : ""}; ${result.durationS} s)`,
        "",
        `Machine: ${result.machine.cpus} × ${result.machine.cpuModel}, ${result.machine.memGiB} GiB, Linux ${result.machine.kernel}; 1-min load average during the run ${result.machine.loadAvg1.min.toFixed(1)}–${result.machine.loadAvg1.max.toFixed(1)} (median ${result.machine.loadAvg1.median.toFixed(1)}); ${Object.entries(
          versions,
        )
          .map(([k, v]) => `${k} ${v}`)
          .join("; ")}`,
        "",
        "## Medians",
        "",
        markdownTable(rows),
        "",
        "## kiln per-phase profile (median ms)",
        "",
        phaseTable(rows),
        "",
        "## Goals",
        "",
        goalTable(goals),
        "",
      ].join("\n");
      writeFileSync(path.join(resultsDir, "latest.md"), md);
      formatResults(resultsDir);
      return md;
    };

    const selected = WORKLOADS.filter(
      (w) => (args.only === null || args.only.includes(w.name)) && (!args.quick || w.quick === true),
    );
    let seq = 0;
    const dest = (w: string, b: string): string => `${registry.host}/bench/${w}-${b}-${++seq}:latest`;

    for (const w of selected) {
      const ctx = stageContext(BENCH_DIR, WORK, w.name);
      const runs = w.heavy && !args.quick ? Math.min(args.runs, 2) : args.runs;
      const total = args.warmup + runs;
      log(`workload ${w.name}: ${args.warmup} warm-up + ${runs} runs`);
      if (w.kind === "cache") {
        await runCacheWorkload(w, ctx, bases, [kiln, ...peers], col, total, args.warmup, dest, stateRoot);
        emit(`partial: up to ${w.name}`);
        continue;
      }
      for (const v of w.variants) col.declare(`${w.name}|${v}`, w.title, ["kiln", ...peers.map((p) => p.name)]);
      for (let i = 0; i < total; i++) {
        const measured = i >= args.warmup;
        const spec = (b: string): BuildSpec => ({
          context: ctx,
          buildArgs: w.buildArgs(bases),
          destination: dest(w.name, b),
          bases: w.bases(bases),
        });
        // A B A B …: every builder once per round and variant, kiln first.
        for (const v of w.variants) {
          const row = `${w.name}|${v}`;
          for (const b of [kiln, ...peers]) {
            const s = spec(b.name);
            await b.prepare(v, s);
            const r = await b.build(s);
            await b.cleanup(s);
            log(
              `  ${w.name} ${v} ${b.name}: ${(r.wallMs / 1000).toFixed(2)} s${r.code ? " FAILED " + failure(r) : ""}`,
            );
            if (r.code !== 0) col.note(row, b.name, failure(r));
            else if (measured) col.add(row, b.name, record(r));
          }
        }
      }
      for (const v of w.variants) if (v === "warm") col.note(`${w.name}|warm`, "kiln", KILN_WARM_NOTE);
      emit(`partial: up to ${w.name}`);
    }

    if (args.only === null || args.only.includes("big100k-store")) {
      await runStoreEviction(bases, col, stateRoot, kiln);
      emit("partial: up to big100k-store");
    }
    if (args.only === null || args.only.includes("pull")) await runPull(bases, col, args, kiln);
    emit("partial: up to pull");
    if (args.only === null || args.only.includes("push")) await runPush(bases, col, args, kiln, dest);
    emit("partial: up to push");
    if (!args.quick && (args.only === null || args.only.includes("primitives"))) {
      findMs = await runPrimitives(col, args);
    }

    console.log(emit("complete"));
  } finally {
    await dockerd?.stop();
    await registry.stop();
    removeTree(stateRoot);
  }
}

/**
 * Cold-cache build then warm-cache rebuild (after editing the COPY source), per builder, alternating.
 * kiln runs the pair twice: with its state thrown away between builds (kaniko's situation in an
 * ephemeral pod), and with one `--layer-store` kept across the pair (a fresh store per run: the
 * counterpart of BuildKit's daemon, which keeps its snapshots). The second pair's rebuild is the row
 * "warm-cache-store", compared with BuildKit's warm-cache rebuilds of the same runs.
 */
async function runCacheWorkload(
  w: Workload,
  ctx: string,
  bases: Bases,
  builders: Builder[],
  col: Collector,
  total: number,
  warmup: number,
  dest: (w: string, b: string) => string,
  stateRoot: string,
): Promise<void> {
  const names = builders.map((b) => b.name);
  col.declare(`${w.name}|cold-cache`, w.title, names);
  col.declare(`${w.name}|warm-cache`, w.title, names);
  const withStore = names.filter((n) => n === "kiln" || n === "docker-buildkit");
  if (withStore.includes("kiln")) {
    col.declare(`${w.name}|warm-cache-store`, w.title, withStore);
    col.note(`${w.name}|warm-cache-store`, "kiln", "one --layer-store kept from the cold-cache build (fresh per run)");
    if (withStore.includes("docker-buildkit"))
      col.note(`${w.name}|warm-cache-store`, "docker-buildkit", "its warm-cache rebuilds (the row above)");
  }
  const store = path.join(stateRoot, "kiln-cache-workload-store");
  const unsupported = new Set<string>();
  for (let i = 0; i < total; i++) {
    for (const b of builders) {
      if (unsupported.has(b.name)) continue;
      const spec: BuildSpec = {
        context: ctx,
        buildArgs: w.buildArgs(bases),
        destination: dest(w.name, b.name),
        bases: w.bases(bases),
        cache: true,
      };
      spec.cacheRepo = spec.destination.replace(/:[^:/]*$/, "") + "-cache";
      await b.prepare("cold", spec);
      writeFileSync(path.join(ctx, "changing.txt"), `${i} first\n`);
      const first = await b.build(spec);
      if (first.code !== 0) {
        const note = /not implemented/.test(first.stderr) ? "n/a: --cache not implemented yet" : failure(first);
        col.note(`${w.name}|cold-cache`, b.name, note);
        col.note(`${w.name}|warm-cache`, b.name, note);
        if (/not implemented/.test(first.stderr)) unsupported.add(b.name);
        await b.cleanup(spec);
        continue;
      }
      writeFileSync(path.join(ctx, "changing.txt"), `${i} second\n`);
      const second = await b.build({ ...spec, destination: dest(w.name, b.name) });
      await b.cleanup(spec);
      log(
        `  ${w.name} ${b.name}: cold ${(first.wallMs / 1000).toFixed(2)} s, warm ${(second.wallMs / 1000).toFixed(2)} s`,
      );
      if (i >= warmup) {
        col.add(`${w.name}|cold-cache`, b.name, record(first));
        if (second.code !== 0) col.note(`${w.name}|warm-cache`, b.name, failure(second));
        else col.add(`${w.name}|warm-cache`, b.name, record(second));
        if (b.name === "docker-buildkit" && second.code === 0)
          col.add(`${w.name}|warm-cache-store`, b.name, record(second));
      }
      if (b.name !== "kiln") continue;
      // The same pair with a layer store kept across it.
      removeTree(store);
      // Its own cache repository: the cold-cache build runs every step (and stores what it produces).
      const sSpec: BuildSpec = {
        ...spec,
        cacheRepo: `${spec.cacheRepo}-store-${i}`,
        kilnFlags: ["--layer-store", store],
      };
      await b.prepare("cold", sSpec);
      writeFileSync(path.join(ctx, "changing.txt"), `${i} store first\n`);
      const sFirst = await b.build(sSpec);
      writeFileSync(path.join(ctx, "changing.txt"), `${i} store second\n`);
      const sSecond = sFirst.code === 0 ? await b.build(sSpec) : sFirst;
      await b.cleanup(sSpec);
      removeTree(store);
      log(
        `  ${w.name} kiln --layer-store: cold ${(sFirst.wallMs / 1000).toFixed(2)} s, warm ${(sSecond.wallMs / 1000).toFixed(2)} s`,
      );
      if (i < warmup) continue;
      if (sSecond.code !== 0) col.note(`${w.name}|warm-cache-store`, "kiln", failure(sSecond));
      else col.add(`${w.name}|warm-cache-store`, "kiln", record(sSecond));
    }
  }
}

/**
 * The layer store's disk use and eviction (issue #14). Disk: the store kiln's warm variant filled (the
 * 100,000-file base is stored first when big100k-touch warm did not run). Eviction happens when a build
 * publishes a layer, so it runs on a separate store holding only the Debian base: a busybox build into it
 * with a 1 MB limit must evict the unused (unleased) Debian layer. Notes the figures; the warm build times
 * themselves are the `warm` rows of the workloads.
 */
async function runStoreEviction(bases: Bases, col: Collector, stateRoot: string, kiln: Builder): Promise<void> {
  const shared = kilnStoreDir(stateRoot);
  const ctx = stageContext(BENCH_DIR, WORK, "busybox-run-copy");
  const spec = (base: string, flags: string[] = []): BuildSpec => ({
    context: ctx,
    buildArgs: { BASE: base },
    destination: "unused",
    bases: [base],
    noPush: true,
    kilnFlags: flags,
  });
  const du = (dir: string): number => Number(execFileSync("du", ["-sb", dir], { encoding: "utf8" }).split("\t")[0]);
  await kiln.prepare("warm", spec(bases.big));
  await kiln.cleanup(spec(bases.big));
  const disk = du(shared);
  const store = path.join(stateRoot, "layer-store-eviction");
  removeTree(store);
  const run = async (s: BuildSpec): Promise<BuildResult> => {
    await kiln.prepare("cold", s);
    const r = await kiln.build(s);
    await kiln.cleanup(s);
    return r;
  };
  const fill = await run(spec(bases.debian, ["--layer-store", store]));
  const before = du(store);
  const er = await run(spec(bases.busybox, ["--layer-store", store, "--layer-store-max-size", "1MB"]));
  const after = du(store);
  const evicted = (er.stderr + er.stdout).match(/layer store: evicted/g)?.length ?? 0;
  const failed = fill.code !== 0 ? fill : er.code !== 0 ? er : undefined;
  const msg = `warm store ${(disk / 1e6).toFixed(1)} MB after the warm builds; eviction run (store holding the Debian base, ${(before / 1e6).toFixed(1)} MB; busybox build with a 1 MB limit): ${evicted} layer(s) evicted, ${(after / 1e6).toFixed(1)} MB left${failed ? " — FAILED " + failure(failed) : ""}`;
  log(`  layer store: ${msg}`);
  col.note("big100k-touch|store-disk", "kiln", msg);
  removeTree(store);
  removeTree(shared);
}

/** Pull: kiln (`FROM base` only, written as an OCI layout, no push) vs `skopeo copy docker:// oci:`. */
async function runPull(bases: Bases, col: Collector, args: Args, kiln: Builder): Promise<void> {
  const ctx = pullContext(WORK);
  const targets: [string, string][] = args.quick
    ? [["debian", bases.debian]]
    : [
        ["debian", bases.debian],
        ["big100k", bases.big],
      ];
  for (const [name, ref] of targets) {
    const row = `pull-${name}|cold`;
    col.declare(row, `pull ${name} into an OCI layout (kiln: build of \`FROM base\` only)`, ["kiln", "skopeo"]);
    log(`pull ${name}`);
    for (let i = 0; i < args.warmup + args.runs; i++) {
      const out = path.join(WORK, "pull-out");
      removeTree(out);
      const spec: BuildSpec = {
        context: ctx,
        buildArgs: { BASE: ref },
        destination: "unused",
        bases: [ref],
        noPush: true,
        kilnFlags: ["--oci-layout-path", out],
      };
      await kiln.prepare("cold", spec);
      const k = await kiln.build(spec);
      await kiln.cleanup(spec);
      removeTree(out);
      const s = await timed("skopeo", [
        "--insecure-policy",
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        `docker://${ref}`,
        `oci:${out}:latest`,
      ]);
      removeTree(out);
      if (i < args.warmup) continue;
      if (k.code !== 0) col.note(row, "kiln", failure(k));
      else col.add(row, "kiln", record(k));
      if (s.code !== 0) col.note(row, "skopeo", failure(s));
      else col.add(row, "skopeo", record(s));
    }
  }
}

/** Push: kiln's push phase for the 5-layer image vs `skopeo copy oci: docker://` of the same image. */
async function runPush(
  bases: Bases,
  col: Collector,
  args: Args,
  kiln: Builder,
  dest: (w: string, b: string) => string,
): Promise<void> {
  const ctx = stageContext(BENCH_DIR, WORK, "push-multilayer");
  const row = "push-5x16MiB|fresh-repo";
  col.declare(row, "push busybox + 5 × 16 MiB layers to an empty repository", ["kiln (push phase)", "skopeo"]);
  log("push");
  for (let i = 0; i < args.warmup + args.runs; i++) {
    const out = path.join(WORK, "push-layout");
    removeTree(out);
    const spec: BuildSpec = {
      context: ctx,
      buildArgs: { BASE: bases.busybox },
      destination: dest("push", "kiln"),
      bases: [bases.busybox],
      kilnFlags: ["--oci-layout-path", out],
      // Every upload in the push phase, as skopeo does them: the layers are not pushed during the build.
      kilnEnv: { KILN_BENCH_NO_PUSH_AHEAD: "1" },
    };
    await kiln.prepare("cold", spec);
    const k: BuildResult = await kiln.build(spec);
    await kiln.cleanup(spec);
    const s = await timed("skopeo", [
      "--insecure-policy",
      "copy",
      "--quiet",
      "--dest-tls-verify=false",
      `oci:${out}`,
      `docker://${dest("push", "skopeo")}`,
    ]);
    removeTree(out);
    if (i < args.warmup) continue;
    if (k.code !== 0 || k.phases?.["push"] === undefined) col.note(row, "kiln (push phase)", failure(k));
    else col.add(row, "kiln (push phase)", { wallMs: k.phases["push"], cpuMs: k.cpuMs, rssKb: k.rssKb });
    if (s.code !== 0) col.note(row, "skopeo", failure(s));
    else col.add(row, "skopeo", record(s));
  }
  col.note(
    row,
    "kiln (push phase)",
    "CPU/RSS are the whole kiln build's; built without pushing ahead (KILN_BENCH_NO_PUSH_AHEAD=1), so that the phase holds every blob transfer (kiln mounts the busybox base layer, skopeo uploads it)",
  );
}

/**
 * Primitives: kiln's compressor vs pigz / zstd on the Debian base layer's tar, and `find` (lstat every
 * entry) over the 100,000-file root for the snapshot goal. Returns find's median ms.
 */
async function runPrimitives(col: Collector, args: Args): Promise<number | null> {
  const cache = CACHE;
  const tar = path.join(cache, "debian-layer.tar");
  const rootfs = path.join(cache, "big100k-bundle");
  if (!existsSync(tar)) {
    const { debianOciLayout } = await import("../test/support/base-images.js");
    const layout = await debianOciLayout();
    const index = JSON.parse(execFileSync("cat", [path.join(layout.dir, "index.json")], { encoding: "utf8" })) as {
      manifests: { digest: string }[];
    };
    const blob = (d: string): string => path.join(layout.dir, "blobs", ...d.split(":"));
    const manifest = JSON.parse(
      execFileSync("cat", [blob(index.manifests[0]?.digest ?? "")], { encoding: "utf8" }),
    ) as {
      layers: { digest: string }[];
    };
    execFileSync("sh", ["-c", `gzip -dc '${blob(manifest.layers[0]?.digest ?? "")}' > '${tar}'`]);
  }
  if (!existsSync(rootfs)) {
    execFileSync("umoci", ["unpack", "--image", `${path.join(cache, "big100k-oci")}:latest`, rootfs]);
  }
  const rowC = "compress-gzip|debian-layer-tar";
  const rowZ = "compress-zstd|debian-layer-tar";
  const rowF = "walk-100k|find";
  col.declare(rowC, "gzip -6 of the Debian base layer's tar (~130 MB)", ["kiln", "pigz"]);
  col.declare(rowZ, "zstd -3 of the same tar", ["kiln", "zstd"]);
  col.declare(rowF, "lstat walk of the 100,000-file root", ["find"]);
  const compressJs = path.join(REPO, "dist", "bench", "compress-kiln.js");
  log("primitives");
  const finds: number[] = [];
  for (let i = 0; i < args.warmup + args.runs; i++) {
    const kg = await timed(process.execPath, [compressJs, "gzip", tar]);
    const pg = await timed("sh", ["-c", `pigz -6 -c '${tar}' > /dev/null`]);
    const kz = await timed(process.execPath, [compressJs, "zstd", tar]);
    const pz = await timed("sh", ["-c", `zstd -3 -T0 -q -c '${tar}' > /dev/null`]);
    const f = await timed("sh", ["-c", `find '${rootfs}/rootfs' -printf '%s %T@ %i\\n' > /dev/null`]);
    if (i < args.warmup) continue;
    for (const [row, name, r] of [
      [rowC, "kiln", kg],
      [rowC, "pigz", pg],
      [rowZ, "kiln", kz],
      [rowZ, "zstd", pz],
      [rowF, "find", f],
    ] as const) {
      if (r.code !== 0) col.note(row, name, failure(r));
      else col.add(row, name, record(r));
    }
    if (f.code === 0) finds.push(f.wallMs);
  }
  finds.sort((a, b) => a - b);
  return finds.length ? (finds[Math.floor(finds.length / 2)] ?? null) : null;
}

function evaluateGoals(rows: RowResult[], findMs: number | null): GoalResult[] {
  const goals: GoalResult[] = [];
  const fmt = (x: number): string => `${x.toFixed(2)}×`;
  const e2e = new Set(WORKLOADS.map((w) => w.name));
  for (const r of rows) {
    if (!e2e.has(r.workload)) continue;
    const scope = `${r.workload} (${r.variant})`;
    const bk = r.ratios["docker-buildkit"];
    if (bk !== undefined)
      goals.push({
        goal: "kiln ≤ 1.0× BuildKit",
        scope,
        figure: bk === null ? "n/a" : fmt(bk),
        met: bk === null ? null : bk <= 1,
      });
    for (const d of ["buildah-vfs", "buildah-overlay"]) {
      const x = r.ratios[d];
      if (x !== undefined)
        goals.push({
          goal: `kiln ≤ 0.5× ${d}`,
          scope,
          figure: x === null ? "n/a" : fmt(x),
          met: x === null ? null : x <= 0.5,
        });
    }
  }
  const big = rows.find((r) => r.workload === "layer-2g")?.builders["kiln"];
  if (big)
    goals.push({
      goal: "kiln peak RSS ≤ 200 MB",
      scope: "layer-2g",
      figure: big.rssMb === null ? (big.note ?? "n/a") : `${big.rssMb.toFixed(0)} MB`,
      met: big.rssMb === null ? null : big.rssMb <= 200,
    });
  const comp = rows.find((r) => r.workload === "compress-gzip");
  const kc = comp?.builders["kiln"]?.wallMs;
  const pc = comp?.builders["pigz"]?.wallMs;
  if (comp)
    goals.push({
      goal: "compression ≥ 0.9× pigz (throughput)",
      scope: "gzip -6, Debian layer tar",
      figure: kc && pc ? `${(pc / kc).toFixed(2)}× pigz` : "n/a",
      met: kc && pc ? pc / kc >= 0.9 : null,
    });
  const touch = rows.find((r) => r.workload === "big100k-touch");
  const snap = touch?.builders["kiln"]?.phases?.["snapshot"];
  if (touch)
    goals.push({
      goal: "snapshot ≤ 2× find (walk back-end)",
      scope: "big100k-touch (all snapshots of the build) vs find over the same root",
      figure:
        snap !== undefined && findMs
          ? `${snap.toFixed(0)} ms vs ${findMs.toFixed(0)} ms = ${(snap / findMs).toFixed(2)}×`
          : "n/a",
      met: snap !== undefined && findMs ? snap / findMs <= 2 : null,
    });
  const small = rows.find((r) => r.workload === "busybox-run-copy")?.builders["kiln"]?.phases?.["snapshot"];
  if (touch && small !== undefined)
    goals.push({
      goal: "snapshot cost independent of image size (overlay back-end)",
      scope: "kiln snapshot ms: 100,000-file base vs busybox",
      figure:
        snap !== undefined
          ? `${snap.toFixed(0)} ms vs ${small.toFixed(0)} ms (the back-end kiln chose: overlay where mounts work)`
          : "n/a",
      // "Independent": the 100,000-file base costs at most twice the busybox snapshot.
      met: snap !== undefined ? snap <= 2 * small : null,
    });
  for (const r of rows.filter((x) => x.workload.startsWith("pull-"))) {
    const x = r.ratios["skopeo"];
    goals.push({
      goal: "pull ≤ 1.0× skopeo copy (issue #4)",
      scope: r.workload,
      figure: x === null || x === undefined ? "n/a" : fmt(x),
      met: x === null || x === undefined ? null : x <= 1,
    });
  }
  const push = rows.find((r) => r.workload === "push-5x16MiB");
  const pk = push?.builders["kiln (push phase)"]?.wallMs;
  const ps = push?.builders["skopeo"]?.wallMs;
  if (push)
    goals.push({
      goal: "push ≤ 1.0× skopeo copy",
      scope: "push-5x16MiB, kiln push phase",
      figure: pk && ps ? fmt(pk / ps) : "n/a",
      met: pk && ps ? pk / ps <= 1 : null,
    });
  const cache = rows.find((r) => r.workload === "cache-rebuild" && r.variant === "warm-cache")?.builders["kiln"];
  if (cache)
    goals.push({
      goal: "warm-cache rebuild ≤ 1.0× BuildKit",
      scope: "cache-rebuild",
      figure: cache.note ?? "see table",
      met: cache.wallMs === null ? null : null,
    });
  return goals;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
