import { createHash, randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import * as path from "node:path";

/** Files kept before the oldest half is pruned (a config is a few KiB: at most a few MiB in all). */
const MAX_FILES = 256;

/**
 * Image configs kept by digest in a directory across builds: a base image's config never changes
 * for its digest, so a rebuild from the same base reads it here instead of asking the registry (one
 * round trip less per base image, after the manifest that names it). Every read is checked against
 * the digest (a damaged or planted file is ignored and fetched again); writes are atomic (written
 * aside, renamed); failures of either only mean the registry is asked. BuildKit keeps resolved image
 * configs in its content store in the same way.
 */
export interface ConfigCache {
  /** The config bytes for `digest` (`sha256:<hex>`), or undefined when not kept or not intact. */
  get(digest: string, maxBytes: number): Promise<Buffer | undefined>;
  /** Keeps `bytes` (already verified against `digest`) for later builds. Never throws. */
  put(digest: string, bytes: Uint8Array): Promise<void>;
}

function hexOf(digest: string): string | undefined {
  return /^sha256:([0-9a-f]{64})$/.exec(digest)?.[1];
}

/** A {@link ConfigCache} in `dir` (created on first write). */
export function configCache(dir: string): ConfigCache {
  return {
    async get(digest, maxBytes) {
      const hex = hexOf(digest);
      if (hex === undefined) return undefined;
      const file = path.join(dir, `${hex}.json`);
      try {
        const st = await stat(file);
        if (!st.isFile() || st.size > maxBytes) return undefined;
        const bytes = await readFile(file);
        return createHash("sha256").update(bytes).digest("hex") === hex ? bytes : undefined;
      } catch {
        return undefined;
      }
    },
    async put(digest, bytes) {
      const hex = hexOf(digest);
      if (hex === undefined) return;
      const tmp = path.join(dir, `.${hex}.${process.pid}.${randomBytes(4).toString("hex")}`);
      try {
        await mkdir(dir, { recursive: true, mode: 0o755 });
        await writeFile(tmp, bytes);
        await rename(tmp, path.join(dir, `${hex}.json`));
        await prune(dir);
      } catch {
        await rm(tmp, { force: true }).catch(() => undefined);
      }
    },
  };
}

/** Past {@link MAX_FILES} configs, deletes the least recently written half. */
async function prune(dir: string): Promise<void> {
  const names = (await readdir(dir)).filter((n) => n.endsWith(".json"));
  if (names.length <= MAX_FILES) return;
  const aged = await Promise.all(
    names.map(async (n) => ({ n, t: (await stat(path.join(dir, n)).catch(() => undefined))?.mtimeMs ?? 0 })),
  );
  aged.sort((a, b) => a.t - b.t);
  for (const { n } of aged.slice(0, names.length - MAX_FILES / 2))
    await rm(path.join(dir, n), { force: true }).catch(() => undefined);
}
