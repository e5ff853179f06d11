/**
 * kaniko's integration corpus as differential cases: every Dockerfile under `dockerfiles/` and
 * `dockerfiles-with-context/` of ../shared/conformance/kaniko-integration/integration, read in place, with the
 * build args and flags `analysis.json` records for it, external base images mapped to the two offline
 * stand-ins, and a skip reason where the case needs something this machine cannot reach.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { conformanceDir } from "../support/tmp.js";

/** One differential case: a Dockerfile, its context, and the inputs both builders get. */
export interface DiffCase {
  /** Unique name shown in the table (`kaniko/<file>` or `own/<name>`). */
  name: string;
  /** Absolute path of the Dockerfile as stored (before any FROM rewrite). */
  dockerfile: string;
  /** Absolute path of the build context. */
  context: string;
  /** `KEY=VALUE` build args for both builders. */
  buildArgs: string[];
  /** Extra flags for `docker build` only. */
  dockerFlags: string[];
  /** Extra flags for kiln only (kaniko-specific flags from analysis.json). */
  kilnFlags: string[];
  /** When set, the case is not built, and this says why. */
  skip?: string;
  /**
   * The name of an earlier case with byte-identical inputs (Dockerfile, context, args, flags): this case is
   * not built again and takes that case's result (kaniko's `*_oci` cache variants are copies).
   */
  duplicateOf?: string;
}

interface AnalysisFrom {
  raw: string;
  resolved: string;
  kind: "external" | "scratch" | "stage";
}

interface AnalysisEntry {
  froms: AnalysisFrom[];
  external_images: string[];
  copy_from_external: string[];
  add_urls: string[];
  run_network_heuristic: string[];
  build_args: string[];
  env: string[];
  docker_extra_flags: string[];
  kaniko_extra_flags: string[];
}

/**
 * The stand-ins served by the local registry: busybox and Debian (offline images), and kaniko's
 * `onbuild-base` built in setup from `Dockerfile_onbuild_base` (as kaniko's own harness does).
 */
export type StandIn = "busybox" | "debian" | "onbuild-base";

/** Maps an external image reference to its stand-in, or undefined when none fits. */
export function standInFor(ref: string): StandIn | undefined {
  let name = ref.split("@")[0] ?? ref;
  const lastSlash = name.lastIndexOf("/");
  const colon = name.lastIndexOf(":");
  if (colon > lastSlash) name = name.slice(0, colon);
  name = name.replace(/^docker\.io\//, "").replace(/^library\//, "");
  if (name === "busybox" || name === "alpine") return "busybox";
  if (name === "debian" || name === "ubuntu" || name === "phusion/baseimage") return "debian";
  if (name === "gcr.io/kaniko-test/onbuild-base") return "onbuild-base";
  return undefined;
}

/**
 * Per-file reasons a kaniko case cannot run here, beyond what analysis.json shows (URLs, package managers,
 * unmapped images are detected from it automatically).
 */
const EXPLICIT_SKIPS: Record<string, string> = {
  "dockerfiles/Dockerfile_test_copy_bucket": "builds from a GCS bucket context (-b), not a directory",
  "dockerfiles/Dockerfile_git_buildcontext": "needs a git build context (covered by the git context tests)",
  "dockerfiles/Dockerfile_test_issue_2066":
    "RUN apt update/install against the Ubuntu/Debian archive (network; ~80 s; apt caches and logs hold timestamps)",
  "dockerfiles/Dockerfile_test_snapshotter_ignorelist":
    "asserts kaniko trace log lines about /dev (not an image property); its FROM is alpine + RUN ln to /dev/null",
};

/** The kaniko integration directory (the build context of `dockerfiles/*`). */
export function kanikoIntegrationDir(): string {
  return path.join(conformanceDir(), "kaniko-integration", "integration");
}

function skipReason(key: string, a: AnalysisEntry): string | undefined {
  const explicit = EXPLICIT_SKIPS[key];
  if (explicit !== undefined) return explicit;
  // ADD of public URLs is served by the local URL server (url-server.ts), so it is not a reason to skip.
  if (a.run_network_heuristic.length > 0) {
    return `RUN needs the Internet: ${(a.run_network_heuristic[0] ?? "").slice(0, 60)}`;
  }
  const unmapped = [...a.external_images, ...a.copy_from_external].filter((r) => standInFor(r) === undefined);
  if (unmapped.length > 0) return `base image without an offline stand-in: ${[...new Set(unmapped)].join(", ")}`;
  return undefined;
}

/** Every kaniko corpus case (skipped ones included, with their reason). */
export function kanikoCases(): DiffCase[] {
  const root = kanikoIntegrationDir();
  const analysis = JSON.parse(
    readFileSync(path.join(conformanceDir(), "kaniko-integration", "analysis.json"), "utf8"),
  ) as { dockerfiles: Record<string, AnalysisEntry> };
  const cases: DiffCase[] = [];
  const seen = new Map<string, string>();
  for (const [key, a] of Object.entries(analysis.dockerfiles).sort(([x], [y]) => x.localeCompare(y))) {
    if (!key.startsWith("dockerfiles/") && !key.startsWith("dockerfiles-with-context/")) continue;
    const dockerfile = path.join(root, key);
    const context = key.startsWith("dockerfiles-with-context/") ? path.dirname(dockerfile) : root;
    // An arg without a value takes it from the environment kaniko's harness sets (analysis.json → env).
    const env = new Map(a.env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
    const buildArgs = a.build_args.map((arg) => (arg.includes("=") ? arg : `${arg}=${env.get(arg) ?? ""}`));
    const skip = skipReason(key, a);
    const name = `kaniko/${key.replace(/^dockerfiles\//, "").replace(/\/Dockerfile$/, "")}`;
    const inputs = JSON.stringify([
      readFileSync(dockerfile, "utf8"),
      context,
      buildArgs,
      a.docker_extra_flags,
      a.kaniko_extra_flags,
    ]);
    const duplicateOf = skip === undefined ? seen.get(inputs) : undefined;
    if (skip === undefined && duplicateOf === undefined) seen.set(inputs, name);
    cases.push({
      name,
      dockerfile,
      context,
      buildArgs,
      dockerFlags: a.docker_extra_flags,
      kilnFlags: a.kaniko_extra_flags.filter((f) => !f.startsWith("-v=")),
      ...(skip !== undefined ? { skip } : {}),
      ...(duplicateOf !== undefined ? { duplicateOf } : {}),
    });
  }
  return cases;
}

/** What the FROM rewrite needs from analysis.json: the resolved reference of each FROM, in order. */
export function resolvedFroms(c: DiffCase): string[] | undefined {
  if (!c.name.startsWith("kaniko/")) return undefined;
  const analysis = JSON.parse(
    readFileSync(path.join(conformanceDir(), "kaniko-integration", "analysis.json"), "utf8"),
  ) as { dockerfiles: Record<string, AnalysisEntry> };
  const key = path.relative(kanikoIntegrationDir(), c.dockerfile);
  return analysis.dockerfiles[key]?.froms.map((f) => f.resolved);
}
