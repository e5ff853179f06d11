/**
 * Where a fully cached rebuild's time goes. Interleaves, on the multistage workload against a local
 * registry:
 * - `kiln`: kiln's fully cached rebuild (`--cache --cache-copy-layers` with a registry cache, state dir kept,
 *   as in bench/cache-rebuild.ts);
 * - `floor`: a Node process that makes the registry requests kiln's rebuild makes (the two base
 *   manifests, the two stages' chain records, the destination tag, the push-permission check's POST
 *   and DELETE, the manifest PUT; the base configs come from kiln's `image-metadata/`; in kiln's order
 *   and dependencies, over `node:http` keep-alive) and nothing else;
 * - `node -e 0`: Node's own start.
 * The floor is what any builder started per build in Node pays to this registry; a warm daemon
 * (BuildKit) pays neither the start nor, with its local metadata, all of the requests.
 * Usage: npx tsx bench/request-floor.ts [--rounds N]   (needs `npm run build`; root for kiln's RUN)
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { busyboxOciLayout, debianOciLayout, pushLayoutToRegistry } from "../test/support/base-images.js";
import { startRegistry } from "../test/support/registry.js";
import { kilnNode } from "./lib/kiln-node.js";
import { median, timed } from "./lib/measure.js";
import { numberFlag } from "./lib/argv.js";

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(BENCH_DIR, "..");
const WORK = path.join(REPO, ".tmp", "request-floor");

/** The client: the same requests as kiln's cached multistage rebuild, nothing else. */
function floorScript(host: string, chains: string[]): string {
  return `
import http from "node:http";
const agent = new http.Agent({ keepAlive: true });
const [hostname, port] = ${JSON.stringify(host)}.split(":");
const ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json";
const req = (method, p, headers = {}, body) => new Promise((resolve, reject) => {
  const r = http.request({ hostname, port: Number(port), path: p, method, agent, headers }, (m) => {
    const parts = [];
    m.on("data", (c) => parts.push(c));
    m.on("end", () => resolve({ status: m.statusCode, headers: m.headers, body: Buffer.concat(parts) }));
  });
  r.on("error", reject);
  r.end(body);
});
const base = async (repo, tag) => JSON.parse((await req("GET", "/v2/" + repo + "/manifests/" + tag, { accept: ACCEPT })).body);
const chain = (tag) => req("GET", "/v2/out/cache/manifests/" + tag, { accept: ACCEPT });
const check = async () => {
  const started = await req("POST", "/v2/out/blobs/uploads/", { "content-length": "0" });
  await req("DELETE", new URL(started.headers.location, "http://" + hostname + ":" + port).pathname + new URL(started.headers.location, "http://x").search);
};
const previous = req("GET", "/v2/out/manifests/latest", { accept: ACCEPT });
const permission = check();
await Promise.all([base("debian", "bookworm"), base("busybox", "latest"), ...${JSON.stringify(chains)}.map(chain)]);
await permission;
const p = await previous;
const put = await req("PUT", "/v2/out/manifests/latest", { "content-type": p.headers["content-type"] }, p.body);
if (put.status !== 201) { console.error("PUT", put.status); process.exit(1); }
process.exit(0);
`;
}

async function main(): Promise<void> {
  const rounds = numberFlag("--rounds", 15);
  const node = kilnNode(REPO);
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  const reg = await startRegistry();
  try {
    await pushLayoutToRegistry(await debianOciLayout(), reg.host, "debian:bookworm");
    await pushLayoutToRegistry(await busyboxOciLayout(), reg.host, "busybox:latest");
    const ctx = path.join(WORK, "ctx");
    mkdirSync(ctx);
    writeFileSync(
      path.join(ctx, "Dockerfile"),
      readFileSync(path.join(BENCH_DIR, "workloads", "multistage", "Dockerfile"), "utf8"),
    );
    const kiln = [
      path.join(REPO, "bin", "kiln"),
      "build",
      "--context",
      ctx,
      "--build-arg",
      `BASE=${reg.host}/debian:bookworm`,
      "--build-arg",
      `FINAL=${reg.host}/busybox:latest`,
      "--destination",
      `${reg.host}/out:latest`,
      "--insecure",
      "--insecure-pull",
      "--kaniko-dir",
      path.join(WORK, "state"),
      "--cache=true",
      "--cache-copy-layers",
      `--cache-repo=${reg.host}/out/cache`,
    ];
    const first = await timed(node.bin, kiln);
    if (first.code !== 0) throw new Error(`kiln's first build failed:\n${first.stderr}`);
    const debug = await timed(node.bin, [...kiln, "--verbosity=debug"]);
    const chains = [...new Set([...debug.stderr.matchAll(/"reference":"(chain-[0-9a-f]{64})"/g)].map((m) => m[1]))];
    if (chains.length !== 2) throw new Error(`expected the two stages' chain records, found ${chains.length}`);
    const script = path.join(WORK, "floor.mjs");
    writeFileSync(script, floorScript(reg.host, chains as string[]));
    const runs: Record<string, number[]> = { kiln: [], floor: [], "node -e 0": [] };
    for (let r = 0; r < rounds; r++) {
      for (const [name, args] of [
        ["kiln", kiln],
        ["floor", [script]],
        ["node -e 0", ["-e", "0"]],
      ] as const) {
        const s = await timed(node.bin, [...args]);
        if (s.code !== 0) throw new Error(`${name} failed:\n${s.stderr}`);
        runs[name]?.push(s.wallMs);
      }
    }
    console.log(`request floor of a fully cached multistage rebuild (Node ${node.version}, ${rounds} rounds)`);
    for (const [name, ms] of Object.entries(runs))
      console.log(`${name.padEnd(10)} median ${median(ms).toFixed(0)} ms  min ${Math.min(...ms).toFixed(0)} ms`);
  } finally {
    await reg.stop();
  }
}

await main();
