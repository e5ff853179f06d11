/**
 * What pushing ahead (the final stage's layers pushed while the build runs, build/push-ahead.ts) saves
 * against a registry that is not on loopback: kiln with and without it (`KILN_BENCH_NO_PUSH_AHEAD=1`),
 * interleaved, through a TCP proxy that delays every chunk by `--delay-ms` each way in front of the local
 * registry (a round trip of twice that: every request and answer waits; connection set-up and bandwidth
 * are not slowed). Workloads: busybox RUN+COPY and steps-20 (no cache), and the
 * CI-pod rebuild after a COPY edit (`cache-rebuild`, a registry cache, state thrown away), each pushing
 * to a fresh repository. Prints medians and the ratio with/without.
 * Usage: npm run build && npx tsx bench/push-latency.ts [--delay-ms 10] [--runs 8]   (root for RUN)
 */
import { mkdirSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { busyboxOciLayout, debianOciLayout, pushLayoutToRegistry } from "../test/support/base-images.js";
import { startRegistry } from "../test/support/registry.js";
import { removeTree } from "./lib/builders.js";
import { kilnNode } from "./lib/kiln-node.js";
import { median, timed } from "./lib/measure.js";
import { stageContext } from "./lib/workloads.js";
import { numberFlag } from "./lib/argv.js";

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(BENCH_DIR, "..");
const WORK = path.join(REPO, ".tmp", "push-latency");

/** A TCP proxy to `target` delaying each chunk by `ms` in each direction (order kept: equal timeouts fire in order). */
function delayProxy(target: string, ms: number): Promise<{ host: string; close: () => void }> {
  const [th, tp] = target.split(":");
  const server = net.createServer((client) => {
    const up = net.connect(Number(tp), th);
    const later = (f: () => void): void => void setTimeout(f, ms);
    client.on("data", (d) => later(() => up.write(d)));
    up.on("data", (d) => later(() => client.write(d)));
    client.on("end", () => later(() => up.end()));
    up.on("end", () => later(() => client.end()));
    client.on("error", () => up.destroy());
    up.on("error", () => client.destroy());
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      resolve({ host: `127.0.0.1:${port}`, close: () => server.close() });
    });
  });
}

async function main(): Promise<void> {
  const delayMs = numberFlag("--delay-ms", 10);
  const runs = numberFlag("--runs", 8);
  removeTree(WORK);
  mkdirSync(WORK, { recursive: true });
  const reg = await startRegistry();
  const proxy = await delayProxy(reg.host, delayMs);
  try {
    await pushLayoutToRegistry(await busyboxOciLayout(), reg.host, "bench/busybox:latest");
    await pushLayoutToRegistry(await debianOciLayout(), reg.host, "bench/debian:bookworm");
    const node = kilnNode(REPO).bin;
    const bases = { busybox: `${proxy.host}/bench/busybox:latest`, debian: `${proxy.host}/bench/debian:bookworm` };
    let seq = 0;
    const build = async (ctx: string, base: string, ahead: boolean, extra: string[] = []): Promise<number> => {
      const state = path.join(WORK, "state");
      removeTree(state);
      const args = [
        path.join(REPO, "bin", "kiln"),
        "build",
        "--context",
        ctx,
        "--build-arg",
        `BASE=${base}`,
        "--destination",
        `${proxy.host}/out/r${++seq}:latest`,
        "--insecure",
        "--insecure-pull",
        "--kaniko-dir",
        state,
        ...extra,
      ];
      const env: NodeJS.ProcessEnv = { ...process.env, KILN_BENCH_NO_PUSH_AHEAD: "1" };
      if (ahead) delete env.KILN_BENCH_NO_PUSH_AHEAD; // not inherited from the shell either
      const s = await timed(node, args, { cwd: REPO, env });
      if (s.code !== 0) throw new Error(`kiln failed (${s.code}): ${s.stderr.trim().split("\n").pop() ?? ""}`);
      return s.wallMs;
    };
    const rows: string[] = [];
    for (const w of ["busybox-run-copy", "steps-20", "cache-rebuild"]) {
      const ctx = stageContext(BENCH_DIR, WORK, w);
      const base = w === "cache-rebuild" ? bases.debian : bases.busybox;
      const cache = w === "cache-rebuild" ? ["--cache=true", `--cache-repo=${proxy.host}/out/cache`] : [];
      if (cache.length > 0) {
        writeFileSync(path.join(ctx, "changing.txt"), "first\n");
        await build(ctx, base, true, cache); // fills the cache (untimed)
      }
      const times: Record<"with" | "without", number[]> = { with: [], without: [] };
      for (let i = 0; i < runs; i++) {
        // Alternating which goes first, so that neither takes every cold-start penalty.
        for (const ahead of i % 2 === 0 ? [false, true] : [true, false]) {
          if (cache.length > 0) writeFileSync(path.join(ctx, "changing.txt"), `edit ${i} ${ahead}\n`);
          times[ahead ? "with" : "without"].push(await build(ctx, base, ahead, cache));
        }
      }
      const a = median(times.with);
      const b = median(times.without);
      rows.push(`| ${w} | ${(b / 1000).toFixed(3)} s | ${(a / 1000).toFixed(3)} s | ${(a / b).toFixed(2)} |`);
      console.error(`${w}: without ${b.toFixed(0)} ms, with ${a.toFixed(0)} ms`);
    }
    console.log(`push ahead over a ${2 * delayMs} ms round trip (${runs} builds each, interleaved, medians)\n`);
    console.log("| workload | without push ahead | with push ahead | ratio |\n|---|---|---|---|");
    console.log(rows.join("\n"));
  } finally {
    proxy.close();
    await reg.stop();
  }
}

await main();
