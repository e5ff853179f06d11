/**
 * A base image on a registry behind a slower link than loopback (Docker Hub for most kaniko users), built
 * with a RUN step (so the base is extracted) and written somewhere else: pushed to another registry, or
 * written as an OCI layout. kiln keeps a copy of a base layer's blob while it extracts it and the output
 * reads that copy (build/kept-bases.ts); before session 15 the output downloaded the blob a second time.
 * Measured, interleaved, state thrown away before every build:
 *   - kiln, kiln with the copy switched off (`KILN_BENCH_NO_KEPT_BASES=1`, a benchmark-only switch), and
 *     BuildKit (a real dockerd, its images and build cache pruned: a cold pull), each pushing to a fresh
 *     repository of a second local registry;
 *   - kiln with and without the copy writing an OCI layout (`--no-push --oci-layout-path`).
 * The link: the fault proxy of the tests in front of the base's registry, sending blob bodies at
 * `--mbps` MB/s (default 50). Prints medians and ratios.
 * Usage: npm run build && npx tsx bench/base-link.ts [--mbps 50] [--runs 5]   (root: RUN, dockerd)
 */
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { debianOciLayout, pushLayoutToRegistry } from "../test/support/base-images.js";
import { startFaultProxy } from "../test/support/fault-proxy.js";
import { startRegistry } from "../test/support/registry.js";
import { dockerBuilder, kilnBuilder, removeTree, type Builder, type BuildSpec } from "./lib/builders.js";
import { startDockerd } from "./lib/env.js";
import { kilnNode } from "./lib/kiln-node.js";
import { median } from "./lib/measure.js";
import { numberFlag } from "./lib/argv.js";

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(BENCH_DIR, "..");
const WORK = path.join(REPO, ".tmp", "base-link");

/** One measured arm: a builder and how it changes the spec. */
interface Arm {
  name: string;
  builder: Builder;
  spec: (base: BuildSpec) => BuildSpec;
}

async function main(): Promise<void> {
  // The plain kiln arms keep their copies even when the shell exported the switch.
  delete process.env.KILN_BENCH_NO_KEPT_BASES;
  const mbps = numberFlag("--mbps", 50);
  const runs = numberFlag("--runs", 5);
  removeTree(WORK);
  mkdirSync(WORK, { recursive: true });
  const source = await startRegistry();
  const dest = await startRegistry();
  const link = await startFaultProxy({ target: source.host, bytesPerSecond: mbps * 1e6 });
  const dockerd = await startDockerd(path.join(WORK, "dockerd"), link.host);
  try {
    await pushLayoutToRegistry(await debianOciLayout(), source.host, "bench/debian:bookworm");
    const base = `${link.host}/bench/debian:bookworm`;
    const ctx = path.join(WORK, "ctx");
    mkdirSync(ctx, { recursive: true });
    writeFileSync(path.join(ctx, "Dockerfile"), "ARG BASE\nFROM ${BASE}\nRUN echo built > /built.txt\n");
    const kiln = kilnBuilder(REPO, path.join(WORK, "kiln"), kilnNode(REPO).bin);
    const buildkit = dockerBuilder("buildkit", dockerd);
    const off = { KILN_BENCH_NO_KEPT_BASES: "1" };
    const layout = (s: BuildSpec): BuildSpec => ({
      ...s,
      noPush: true,
      kilnFlags: ["--oci-layout-path", path.join(WORK, "layout")],
    });
    const arms: Arm[] = [
      { name: "push: kiln", builder: kiln, spec: (s) => s },
      { name: "push: kiln, copy off", builder: kiln, spec: (s) => ({ ...s, kilnEnv: off }) },
      { name: "push: BuildKit", builder: buildkit, spec: (s) => s },
      { name: "layout: kiln", builder: kiln, spec: layout },
      { name: "layout: kiln, copy off", builder: kiln, spec: (s) => ({ ...layout(s), kilnEnv: off }) },
    ];
    const times = new Map<string, number[]>(arms.map((a) => [a.name, []]));
    let seq = 0;
    for (let i = 0; i < runs; i++) {
      // The arms take turns, each starting first once in a while.
      for (let k = 0; k < arms.length; k++) {
        const arm = arms[(i + k) % arms.length];
        if (arm === undefined) continue;
        removeTree(path.join(WORK, "layout"));
        const spec = arm.spec({
          context: ctx,
          buildArgs: { BASE: base },
          destination: `${dest.host}/out/r${++seq}:latest`,
          bases: [base],
        });
        await arm.builder.prepare("cold", spec);
        const r = await arm.builder.build(spec);
        await arm.builder.cleanup(spec);
        if (r.code !== 0) throw new Error(`${arm.name} failed (exit ${r.code}): ${(r.stderr + r.stdout).slice(-400)}`);
        times.get(arm.name)?.push(r.wallMs / 1000);
      }
    }
    const m = (name: string): number => median(times.get(name) ?? []);
    console.log(`base: debian (48.7 MiB layer) through a ${mbps} MB/s link; ${runs} builds per arm, medians`);
    for (const a of arms) console.log(`${a.name.padEnd(24)} ${m(a.name).toFixed(2)} s`);
    const ratio = (a: string, b: string): string => (m(a) / m(b)).toFixed(2);
    console.log(`push: kiln / BuildKit ${ratio("push: kiln", "push: BuildKit")}×`);
    console.log(`push: kiln / kiln with the copy off ${ratio("push: kiln", "push: kiln, copy off")}×`);
    console.log(`layout: kiln / kiln with the copy off ${ratio("layout: kiln", "layout: kiln, copy off")}×`);
  } finally {
    await dockerd.stop();
    await link.stop();
    await dest.stop();
    await source.stop();
  }
}

await main();
