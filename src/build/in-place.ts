import { realpathSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { KilnError } from "../common/errors.js";
import {
  applyLayer,
  changesTarStream,
  cleanContainerPath,
  IgnoreList,
  walkRoot,
  type IgnoreListOptions,
} from "../fs/index.js";
import { MediaTypes, spoolLayer } from "../image/index.js";
import type { Layer } from "../image/types.js";
import type { Runner } from "../run/index.js";
import type { Reporter } from "./events.js";
import type { BuildOptions } from "./options.js";

/** kaniko's refusal to build in place outside a container, worded as kaniko words it. */
export const IN_PLACE_REFUSED =
  "kiln should only be run inside of a container, run with the --force flag if you are sure you want to continue";

/**
 * Whether this build uses the in-place back-end (design.md §3), where "/" itself is the build root:
 * with `--isolation=in-place`, or auto-detected when kiln runs in a container and nothing stronger
 * works. Creates the runner to find out (cheap: a probe of a few milliseconds). Returns the ignore
 * list of the in-place build, or undefined when the build uses directory roots.
 * @throws KilnError IN_PLACE_OUTSIDE_CONTAINER for `--isolation=in-place` outside a container without
 *   `--force`; IN_PLACE_RUNTIME_EXPOSED when kiln's own runtime is not protected by the ignore list.
 */
export async function decideInPlace(
  opts: Readonly<BuildOptions>,
  runner: () => Promise<Runner>,
): Promise<IgnoreList | undefined> {
  if (opts.isolation !== "in-place" && opts.isolation !== "auto") return undefined;
  const r = await runner();
  if (r.isolation !== "in-place") return undefined;
  const explicit = opts.isolation === "in-place";
  // auto outside a container: RUN then explains that no back-end works here.
  if (!r.capabilities.inContainer && (!explicit || !opts.force)) {
    if (!explicit) return undefined;
    throw new KilnError("IN_PLACE_OUTSIDE_CONTAINER", IN_PLACE_REFUSED);
  }
  const ignore = await inPlaceIgnoreList(opts);
  // The build deletes and overwrites everything the ignore list does not protect: kiln's own
  // runtime must be under it (the kiln image keeps node and kiln under /kaniko), or kiln would
  // destroy itself — and, auto-detected, the machine it was merely tested on.
  const exposed = runtimePaths().filter((p) => !ignore.ignores(p));
  if (exposed.length > 0) {
    if (!explicit) return undefined;
    throw new KilnError(
      "IN_PLACE_RUNTIME_EXPOSED",
      `--isolation=in-place would delete kiln's own runtime (${exposed.join(", ")}): it must live under ` +
        `${opts.stateDir} (or an --ignore-path or mount point); use the kiln image, or --isolation=chroot/userns`,
    );
  }
  return ignore;
}

/** Files kiln needs while it runs: the Node binary and this module (standing for kiln's package). */
function runtimePaths(): string[] {
  const out = [process.execPath, fileURLToPath(import.meta.url)];
  return out.map((p) => {
    try {
      return realpathSync(p);
    } catch {
      return p;
    }
  });
}

/**
 * The paths an in-place build must never overwrite, delete or snapshot: kiln's state dir, every
 * mount point of /proc/self/mountinfo, /proc, /sys, /dev, /var/run (unless `--ignore-var-run=false`),
 * `--ignore-path`s, the build context and Dockerfile directories (kiln reads them during the build), and
 * the container markers `/.dockerenv` and `/run/.containerenv`.
 */
export async function inPlaceIgnoreList(opts: Readonly<BuildOptions>): Promise<IgnoreList> {
  return IgnoreList.create(await inPlaceIgnoreOptions(opts));
}

/** The inputs of {@link inPlaceIgnoreList} (mountinfo read once), to derive lists with VOLUMEs added. */
export async function inPlaceIgnoreOptions(opts: Readonly<BuildOptions>): Promise<IgnoreListOptions> {
  let mountinfo: string | undefined;
  try {
    mountinfo = await readFile("/proc/self/mountinfo", "utf8");
  } catch {
    mountinfo = undefined;
  }
  const keep = [opts.contextDir, path.dirname(opts.dockerfilePath)].filter((p) => path.resolve(p) !== "/");
  // The container runtime's marker files: deleting them (kaniko does on cleanup) makes a second
  // in-place build in the same container miss that it runs in a container (cgroup v2 hosts).
  keep.push("/.dockerenv", "/run/.containerenv");
  return {
    stateDir: opts.stateDir,
    mountinfo,
    ignoreVarRun: opts.ignoreVarRun,
    ignorePaths: opts.ignorePaths,
    systemMounts: true,
    volumes: keep.map((p) => path.resolve(p)),
  };
}

/** Escapes a literal path segment for the ignore list's per-segment glob patterns. */
function escapeGlob(segment: string): string {
  return segment.replace(/[*?[\\]/g, (c) => `\\${c}`);
}

/**
 * The in-place ignore list with a stage's VOLUME paths added as kaniko adds them (prefix-only
 * entries): what a later step writes *below* a volume is neither snapshotted nor deleted by
 * whiteouts, while the volume directory itself still is. COPY/ADD into a volume stay in the image,
 * as with kaniko and Docker's legacy builder (kaniko's snapshot of known paths only skips exact
 * ignore-list entries).
 */
export function ignoreWithVolumes(base: IgnoreListOptions, volumes: readonly string[]): IgnoreList {
  const below = volumes.map((v) => {
    const c = cleanContainerPath(v);
    return `${c.split("/").map(escapeGlob).join("/")}/*`;
  });
  return IgnoreList.create({ ...base, ignorePaths: [...(base.ignorePaths ?? []), ...below] });
}

/**
 * `--preserve-context`: saves every entry of the live root the ignore list does not protect (the
 * container's own files) into an uncompressed, content-addressed layer under `dir`. Extracting it
 * under a stage's base layers restores them as part of that stage's starting state (recorded in its
 * index, so unchanged files never reach a layer); extracting it after `--cleanup` restores the
 * container as it was before the build.
 */
export async function saveRootFiles(
  root: string,
  ignore: IgnoreList,
  dir: string,
  report: Reporter,
  signal?: AbortSignal,
): Promise<Layer> {
  const t0 = Date.now();
  const changed: string[] = [];
  await walkRoot(root, { ignore, signal }, (p) => {
    changed.push(p);
  });
  const tar = changesTarStream(root, { changed, deleted: [], opaqueDirs: [] });
  const layer = await spoolLayer(tar, { dir, compression: "none", mediaType: MediaTypes.ociLayer, signal });
  report({
    kind: "info",
    message: `Saved ${changed.length} paths of the container's filesystem (--preserve-context) in ${Date.now() - t0}ms`,
  });
  return layer;
}

/** Extracts a layer saved by {@link saveRootFiles} back into the live root (after `--cleanup`). */
export async function restoreRootFiles(
  root: string,
  saved: Layer,
  ignore: IgnoreList,
  report: Reporter,
  signal?: AbortSignal,
): Promise<void> {
  const r = await applyLayer(root, await saved.openUncompressed(signal), { ignore, signal });
  report({ kind: "info", message: `Restored the container's filesystem (--preserve-context): ${r.entries} entries` });
}
