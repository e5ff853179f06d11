import { realpathSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { KilnError } from "../common/errors.js";
import { IgnoreList } from "../fs/index.js";
import type { Runner } from "../run/index.js";
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
 * `--ignore-path`s, and the build context and Dockerfile directories (kiln reads them during the build).
 */
export async function inPlaceIgnoreList(opts: Readonly<BuildOptions>): Promise<IgnoreList> {
  let mountinfo: string | undefined;
  try {
    mountinfo = await readFile("/proc/self/mountinfo", "utf8");
  } catch {
    mountinfo = undefined;
  }
  const keep = [opts.contextDir, path.dirname(opts.dockerfilePath)].filter((p) => path.resolve(p) !== "/");
  return IgnoreList.create({
    stateDir: opts.stateDir,
    mountinfo,
    ignoreVarRun: opts.ignoreVarRun,
    ignorePaths: opts.ignorePaths,
    systemMounts: true,
    volumes: keep.map((p) => path.resolve(p)),
  });
}
