import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { KilnError } from "../../common/errors.js";
import { runTool } from "../exec-tool.js";
import { parseMountinfo } from "../mountinfo.js";

/** An overlay over stored layer trees, mounted by the kiln-exec helper. */
export interface StoreOverlay {
  /** Directory the lower paths are relative to (the store's `layers/sha256`). */
  base: string;
  /** Lower directories relative to `base`, topmost first. */
  lowers: readonly string[];
  upper: string;
  work: string;
  target: string;
}

/** Bytes of mount options the kernel accepts (one page on every architecture kiln runs on). */
const MAX_OPTIONS = 4096;

/** True when the overlay's mount options fit in one page (else the caller falls back to extraction). */
export function overlayOptionsFit(o: StoreOverlay): boolean {
  const data = `lowerdir=${o.lowers.join(":")},upperdir=${o.upper},workdir=${o.work},redirect_dir=off,metacopy=off,index=off`;
  return Buffer.byteLength(data) < MAX_OPTIONS;
}

/**
 * Mounts the overlay at `o.target` in kiln's own mount namespace with `helper --mount-overlay`.
 * @throws KilnError LAYER_STORE_MOUNT with the helper's message.
 */
export async function mountStoreOverlay(helper: string, o: StoreOverlay): Promise<void> {
  for (const p of [...o.lowers, o.upper, o.work]) {
    if (p.includes(":") || p.includes(",")) {
      throw new KilnError(
        "LAYER_STORE_MOUNT",
        `overlay directory ${p} contains ':' or ','; use a state directory without them`,
      );
    }
  }
  const res = await runTool(helper, ["--mount-overlay", o.base, o.lowers.join(":"), o.upper, o.work, o.target]);
  if (!res.ok) {
    throw new KilnError(
      "LAYER_STORE_MOUNT",
      `cannot mount the stage root ${o.target} from the layer store: ${res.stderr}`,
    );
  }
}

/**
 * Unmounts `target` (lazily when busy) with `helper --umount`.
 * @throws KilnError LAYER_STORE_MOUNT with the helper's message.
 */
export async function unmountStoreOverlay(helper: string, target: string): Promise<void> {
  const res = await runTool(helper, ["--umount", target]);
  if (!res.ok) throw new KilnError("LAYER_STORE_MOUNT", `cannot unmount the stage root ${target}: ${res.stderr}`);
}

/** Mount points at or below `dir` in this process's mount namespace, deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const root = path.resolve(dir);
  let text: string;
  try {
    text = await readFile("/proc/self/mountinfo", "utf8");
  } catch {
    return [];
  }
  return parseMountinfo(text)
    .filter((m) => m === root || m.startsWith(root + "/"))
    .sort((a, b) => b.length - a.length);
}
