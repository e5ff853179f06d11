import { canonicalContainerPath } from "./mount-targets.js";
import type { RunMount } from "./types.js";

/** A RUN mount with its canonical container target and the earlier mount it lies inside, if any. */
export interface PlannedMount {
  mount: RunMount;
  /** Canonical container path of the target (symlinks in the root resolved). */
  target: string;
  /** The deepest earlier mount whose target contains this one (nested mounts, e.g. caches at /a and /a/b). */
  parent?: PlannedMount | undefined;
}

function depth(p: string): number {
  return p.split("/").filter((c) => c !== "").length;
}

/**
 * Orders RUN mounts so that a mount nested inside another one's target is mounted after it (parents
 * first, otherwise in Dockerfile order) and names each nested mount's parent: its mount point must
 * then exist inside the parent's source, not in the root the parent hides.
 */
export async function planMounts(root: string, mounts: readonly RunMount[]): Promise<PlannedMount[]> {
  const planned: PlannedMount[] = [];
  for (const mount of mounts) planned.push({ mount, target: await canonicalContainerPath(root, mount.target) });
  const ordered = planned.map((p, i) => ({ p, i })).sort((a, b) => depth(a.p.target) - depth(b.p.target) || a.i - b.i);
  const out: PlannedMount[] = [];
  for (const { p } of ordered) {
    let parent: PlannedMount | undefined;
    for (const q of out) {
      const inside = q.target === "/" || p.target.startsWith(`${q.target}/`);
      if (inside && (parent === undefined || depth(q.target) >= depth(parent.target))) parent = q;
    }
    out.push({ ...p, parent });
  }
  return out;
}
