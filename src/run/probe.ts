import { execFile } from "node:child_process";
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { KilnError } from "../common/errors.js";
import { isInContainer } from "./container-detect.js";
import { findHelper } from "./helper-path.js";
import { probeCacheKey, readProbeCache, writeProbeCache } from "./probe-cache.js";
import { hostDetectionFs } from "./host-detection-fs.js";
import type { IsolationProbe } from "./types.js";

/** The checks `kiln-exec --probe` runs, each the setup of one RUN configuration up to exec. */
export const PROBE_CHECKS = [
  "chroot",
  "mountns",
  "pidns",
  "netns",
  "userns",
  "userns-pidns",
  "userns-netns",
  "overlay",
] as const;

/** One check of {@link PROBE_CHECKS}. */
export type ProbeCheck = (typeof PROBE_CHECKS)[number];

/**
 * Parses the line `kiln-exec --probe` prints (`chroot=1 mountns=0 …`): which checks reached exec.
 * Unknown names are ignored (a newer helper may check more).
 * @throws KilnError RUN_PROBE_FAILED when a check is missing or a value is not 0 or 1.
 */
export function parseProbeLine(line: string): Record<ProbeCheck, boolean> {
  const seen = new Map<string, string>();
  for (const field of line.trim().split(/\s+/)) {
    const eq = field.indexOf("=");
    if (eq > 0) seen.set(field.slice(0, eq), field.slice(eq + 1));
  }
  const out = {} as Record<ProbeCheck, boolean>;
  for (const name of PROBE_CHECKS) {
    const v = seen.get(name);
    if (v !== "0" && v !== "1") {
      throw new KilnError(
        "RUN_PROBE_FAILED",
        `the RUN helper's probe output has no valid "${name}" in "${line.trim()}"`,
      );
    }
    out[name] = v === "1";
  }
  return out;
}

/**
 * The helper options a `kiln-exec --probe` line names as features (`list-upper=1`): options newer than
 * `--probe` itself, which kiln passes only to a helper that knows them. An older helper names none.
 */
export function probeFeatures(line: string): { listUpper: boolean } {
  return { listUpper: line.trim().split(/\s+/).includes("list-upper=1") };
}

/**
 * The isolation mechanisms of a probe: plain chroot, a mount namespace (needs chroot), a pid namespace
 * and an empty network namespace (directly or inside a user namespace), the user namespace itself, and
 * overlay mounts over a root (root with a mount namespace).
 */
export function probeFromChecks(c: Record<ProbeCheck, boolean>, inContainer: boolean): IsolationProbe {
  return {
    chroot: c.chroot,
    mountns: c.chroot && c.mountns,
    pidns: (c.chroot && c.pidns) || (c.userns && c["userns-pidns"]),
    userns: c.userns,
    netns: c.netns || (c.userns && c["userns-netns"]),
    overlay: c.chroot && c.mountns && c.overlay,
    inContainer,
  };
}

/** Where the probe makes its scratch directory, and which helper it runs. */
export interface ProbeOptions {
  /** The kiln-exec helper; default: {@link findHelper}'s. */
  helperPath?: string;
  /**
   * Parent of the probe's scratch root (created if missing): the overlay check is only meaningful on
   * the filesystem build roots live on, the state dir. Default: the OS temp dir.
   */
  scratchDir?: string;
  /**
   * A file that remembers the answer across builds (in a directory kiln keeps, e.g. the layer store):
   * used only while everything the answer depends on is unchanged (see src/run/probe-cache.ts).
   */
  cacheFile?: string;
}

function runProbe(helper: string, scratchDir: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(helper, ["--probe", scratchDir], { encoding: "utf8", env: {} }, (err, stdout, stderr) => {
      if (err === null) {
        resolve(stdout);
        return;
      }
      const detail = (stderr.trim() || err.message).split("\n")[0];
      const usage = /^error usage /.test(stderr) ? " (an older helper without --probe?)" : "";
      reject(
        new KilnError(
          "RUN_PROBE_FAILED",
          `the RUN helper ${helper} could not probe the isolation mechanisms${usage}: ${detail}; rebuild it with "npm run build"`,
          { cause: err },
        ),
      );
    });
  });
}

/**
 * Finds out which isolation mechanisms work here with one run of `kiln-exec --probe`, which tries every
 * RUN configuration at once (one forked child each, up to exec) against an empty scratch root. Takes a
 * few tens of milliseconds; callers cache the result. Without a helper only `inContainer` can be true.
 * Accepts the helper path alone (the earlier signature) or {@link ProbeOptions}.
 * @throws KilnError RUN_PROBE_FAILED when the helper cannot probe (an outdated helper, an unwritable
 *   scratch dir); RUN_HELPER_NOT_FOUND when `helperPath` is given but not executable.
 */
export async function probeIsolation(options: string | ProbeOptions = {}): Promise<IsolationProbe> {
  const o: ProbeOptions = typeof options === "string" ? { helperPath: options } : options;
  const inContainer = isInContainer(hostDetectionFs);
  const helper = findHelper(o.helperPath);
  if (helper === undefined) {
    return { chroot: false, mountns: false, pidns: false, userns: false, netns: false, overlay: false, inContainer };
  }
  const scratchDir = o.scratchDir ?? tmpdir();
  if (o.scratchDir !== undefined) {
    try {
      mkdirSync(scratchDir, { recursive: true }); // sync: see probe-cache.ts
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new KilnError("RUN_PROBE_FAILED", `cannot create ${scratchDir} for the isolation probe: ${why}`, {
        cause: e,
      });
    }
  }
  const key = o.cacheFile !== undefined ? probeCacheKey(helper, scratchDir) : undefined;
  const cached = o.cacheFile !== undefined && key !== undefined ? readProbeCache(o.cacheFile, key) : undefined;
  let line = cached;
  let checks: Record<ProbeCheck, boolean> | undefined;
  if (line !== undefined) {
    try {
      checks = parseProbeLine(line);
    } catch {
      checks = undefined; // a cache from another helper version: probe again
    }
  }
  if (checks === undefined) {
    line = await runProbe(helper, scratchDir);
    checks = parseProbeLine(line);
    if (o.cacheFile !== undefined && key !== undefined) await writeProbeCache(o.cacheFile, key, line.trim());
  }
  // The cached line is the one this very helper printed (its identity is part of the cache key).
  return { ...probeFromChecks(checks, inContainer), overlayDir: scratchDir, ...probeFeatures(line ?? "") };
}
