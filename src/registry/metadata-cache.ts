import { createHash, randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import * as path from "node:path";

/** Files kept before the oldest half is pruned (a few KiB each: at most a few MiB in all). */
const MAX_FILES = 256;

/**
 * Image metadata kept by digest in a directory across builds: configs, and manifests fetched by digest
 * (an index's platform manifest, a `FROM image@sha256:…`). Content named by its digest never changes,
 * so a rebuild from the same base reads it here instead of asking the registry (one round trip less
 * for a config, two for a multi-platform base). Every read is checked against the digest (a damaged
 * or planted file is ignored and fetched again); writes are atomic (written aside, renamed); failures
 * of either only mean the registry is asked. A tag is never kept: it is resolved on every build.
 * BuildKit keeps resolved image metadata in its content store in the same way.
 */
export interface MetadataCache {
  /** The bytes kept for `digest` (`sha256:<hex>`), or undefined when not kept or not intact. */
  get(digest: string, maxBytes: number): Promise<Buffer | undefined>;
  /** Keeps `bytes` (already verified against `digest`) for later builds. Never throws. */
  put(digest: string, bytes: Uint8Array): Promise<void>;
  /** Resolves once every write started so far has ended (callers start them without waiting). */
  settled(): Promise<void>;
}

function hexOf(digest: string): string | undefined {
  return /^sha256:([0-9a-f]{64})$/.exec(digest)?.[1];
}

/** A {@link MetadataCache} in `dir` (created on first write). */
export function metadataCache(dir: string): MetadataCache {
  const writing = new Set<Promise<void>>();
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
    put(digest, bytes) {
      const hex = hexOf(digest);
      if (hex === undefined) return Promise.resolve();
      const p = keep(dir, hex, bytes).finally(() => writing.delete(p));
      writing.add(p);
      return p;
    },
    async settled() {
      await Promise.all([...writing]);
    },
  };
}

/** Writes one file aside and renames it into place; failures only mean the registry is asked next time. */
async function keep(dir: string, hex: string, bytes: Uint8Array): Promise<void> {
  const tmp = path.join(dir, `.${hex}.${process.pid}.${randomBytes(4).toString("hex")}`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await writeFile(tmp, bytes);
    await rename(tmp, path.join(dir, `${hex}.json`));
    await prune(dir);
  } catch {
    await rm(tmp, { force: true }).catch(() => undefined);
  }
}

/** Past {@link MAX_FILES} files, deletes the least recently written half. */
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
