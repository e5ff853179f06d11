import { chmod, lchown, mkdir } from "node:fs/promises";
import { resolveInRoot } from "../../fs/index.js";
import { resolveFileOwner } from "../user.js";
import type { StepContext, StepOutput } from "./step-context.js";

/**
 * WORKDIR's filesystem effect: `mkdir -p` of the (already resolved, absolute) directory, new
 * directories owned by the current USER like BuildKit. Nothing to snapshot when it existed.
 */
export async function execWorkdir(dir: string, ctx: StepContext, previous?: string): Promise<StepOutput> {
  const root = await ctx.rootDir();
  const id = await resolveFileOwner(root, ctx.config.User);
  const created = await mkdirOwned(root, dir, id.uid, id.gid);
  // BuildKit commits a layer for every WORKDIR, also when the directory already exists — except for
  // "/" (it adds no mkdir for the root). `previous` is kept for the history only.
  void previous;
  const snapshot: StepOutput["snapshot"] =
    created.length > 0
      ? { kind: "paths", paths: created }
      : dir === "/"
        ? { kind: "none" }
        : { kind: "entries", paths: [dir] };
  return { snapshot, detail: dir };
}

/** `mkdir -p` inside the root with the given owner for the directories it creates; returns them. */
export async function mkdirOwned(root: string, dir: string, uid: number, gid: number): Promise<string[]> {
  const created: string[] = [];
  let cur = "";
  for (const p of dir.split("/").filter(Boolean)) {
    cur = `${cur}/${p}`;
    const host = await resolveInRoot(root, cur, { followFinal: true });
    try {
      await mkdir(host, { mode: 0o755 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") continue;
      throw e;
    }
    await lchown(host, uid, gid);
    await chmod(host, 0o755);
    created.push(cur);
  }
  return created;
}
