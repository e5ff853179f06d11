import { createHash } from "node:crypto";
import { chmod, chown, cp, lstat, mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { hasCode, KilnError } from "../../common/errors.js";
import { pathExists } from "../../common/path-exists.js";
import type { DirContext } from "../../context/index.js";
import type { RunMount as MountSpec } from "../../dockerfile/index.js";
import type { RunMount } from "../../run/index.js";
import type { BuildSecret } from "../options.js";
import { lockFile, type Unlock } from "./run-cache-lock.js";
import type { StepContext } from "./step-context.js";

/** The host side of a RUN's `--mount` flags: runner mounts, extra env, and what to undo afterwards. */
export interface PreparedMounts {
  mounts: RunMount[];
  /** `KEY=VALUE` entries added to the command's environment (secret `env=`, `SSH_AUTH_SOCK`). */
  env: string[];
  /** Releases cache locks; the caller removes `scratch`. */
  release(): Promise<void>;
}

function mountError(code: string, message: string): KilnError {
  return new KilnError(code, message);
}

/** Host directory holding the cache mount `id`: a hash, so ids never escape the cache root. */
export function cacheMountDir(root: string, id: string): string {
  return path.join(root, createHash("sha256").update(id).digest("hex").slice(0, 32));
}

async function anyExcluded(ctx: DirContext, rel: string, abs: string): Promise<boolean> {
  if (!(await lstat(abs)).isDirectory()) return false;
  const names = await readdir(abs, { recursive: true });
  return names.some((n) => ctx.isExcluded(rel === "" ? n : `${rel}/${n}`));
}

/** Copies a context entry into `dst` without what .dockerignore excludes. */
async function filteredCopy(ctx: DirContext, abs: string, dst: string): Promise<void> {
  await cp(abs, dst, {
    recursive: true,
    verbatimSymlinks: true,
    preserveTimestamps: true,
    filter: (src) => {
      const rel = path.relative(ctx.root, src).split(path.sep).join("/");
      return !ctx.isExcluded(rel) || ctx.hasExclusions;
    },
  });
}

async function secretValue(secrets: readonly BuildSecret[], id: string, env: StepContext["opts"]["env"]) {
  const s = secrets.find((x) => x.id === id);
  if (!s) return undefined;
  if (s.type === "env") {
    const v = env[s.env];
    if (v === undefined) {
      throw mountError("RUN_SECRET_NOT_FOUND", `secret ${id}: environment variable ${s.env} is not set`);
    }
    return Buffer.from(v, "utf8");
  }
  try {
    return await readFile(s.src);
  } catch (e) {
    throw new KilnError("RUN_SECRET_NOT_FOUND", `secret ${id}: cannot read ${s.src}: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

async function ownAndMode(p: string, uid: number, gid: number, mode: number): Promise<void> {
  await chmod(p, mode);
  try {
    await chown(p, uid, gid);
  } catch {
    // rootless: the host file keeps kiln's owner (mapped to root inside the user namespace)
  }
}

/** Infix of the temporary sibling a cache directory is seeded in before it is renamed into place. */
const SEEDING_INFIX = ".seeding-";

/** True when `e` is a Node.js system error with one of `codes`. */
function errnoIs(e: unknown, ...codes: string[]): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && codes.includes(code);
}

/** Where this build's cache mounts persist: the layer store's, `opts.cacheMountsDir`, or the state dir's. */
function cacheRoot(opts: StepContext["opts"]): string {
  return opts.layerStore
    ? path.join(opts.layerStore.dir, "cache-mounts")
    : (opts.cacheMountsDir ?? path.join(opts.stateDir, "cache-mounts"));
}

/** The persistent directory of a cache mount: keyed by `id`, which defaults to the target (BuildKit). */
function cacheDirOf(root: string, m: MountSpec): string {
  return cacheMountDir(root, m.id ?? (m.target as string));
}

/** True for a cache mount that takes the directory's flock (`locked` waits for it, `private` only tries). */
function takesCacheLock(m: MountSpec): boolean {
  return m.type === "cache" && (m.sharing === "locked" || m.sharing === "private");
}

/** The cache flocks one RUN holds, by cache directory; `undefined` where a `private` mount found it busy. */
type CacheLocks = Map<string, Unlock | undefined>;

async function releaseLocks(locks: CacheLocks): Promise<void> {
  for (const unlock of locks.values()) await unlock?.();
}

/**
 * Takes the flock of every `sharing=locked|private` cache directory of one RUN, each directory once
 * and in sorted path order. One global order is what keeps RUNs (concurrent stages or builds) that
 * mount the same ids in different `--mount` orders from each holding one lock while waiting for the
 * other's; taking a directory once keeps a RUN that mounts an id twice from waiting for itself. A
 * directory any mount wants `locked` is waited for; one only `private` mounts want is just tried.
 * Releases what it took when it fails (interrupted, `flock` missing).
 */
async function lockCacheDirs(specs: readonly MountSpec[], root: string, signal?: AbortSignal): Promise<CacheLocks> {
  const wait = new Map<string, boolean>();
  for (const m of specs.filter(takesCacheLock)) {
    const dir = cacheDirOf(root, m);
    wait.set(dir, wait.get(dir) === true || m.sharing === "locked");
  }
  const locks: CacheLocks = new Map();
  try {
    for (const dir of [...wait.keys()].sort()) {
      locks.set(dir, await lockFile(`${dir}.lock`, wait.get(dir) === true, signal));
    }
  } catch (e) {
    await releaseLocks(locks);
    throw e;
  }
  return locks;
}

/**
 * Opens the stage or image roots `from=` names before any cache lock is taken: opening a stage's root
 * waits for that stage, which may itself be waiting for a cache lock this RUN would hold. A cache
 * mount's `from=` only seeds a new directory, so it is opened only while the directory is missing
 * (or, for `private`, may be replaced by a fresh one).
 */
async function openFromRoots(
  specs: readonly MountSpec[],
  ctx: StepContext,
  root: string,
): Promise<Map<string, DirContext>> {
  const roots = new Map<string, DirContext>();
  for (const m of specs) {
    if (m.from === undefined || roots.has(m.from) || (m.type !== "bind" && m.type !== "cache")) continue;
    if (m.type === "cache" && m.sharing !== "private" && (await pathExists(cacheDirOf(root, m)))) continue;
    roots.set(m.from, await ctx.fromRoot(m.from));
  }
  return roots;
}

/** What `from=`/`source=` seed a new cache directory with. */
interface CacheSeed {
  from: DirContext;
  abs: string;
}

/** Resolves a cache mount's seed; undefined when it names neither `from=` nor `source=`. */
async function cacheSeed(
  m: MountSpec,
  ctx: StepContext,
  roots: ReadonlyMap<string, DirContext>,
): Promise<CacheSeed | undefined> {
  if (m.from === undefined && m.source === undefined) return undefined;
  const from = m.from === undefined ? ctx.context : (roots.get(m.from) ?? (await ctx.fromRoot(m.from)));
  const [src] = await from.resolve(m.source ?? ".");
  if (!src) throw mountError("RUN_MOUNT_SOURCE", `RUN --mount: source ${m.source ?? "."} not found`);
  return { from, abs: src.abs };
}

/** Gives a new cache directory its seed (BuildKit seeds only on creation), then its owner and mode. */
async function fillCacheDir(dir: string, m: MountSpec, seed: CacheSeed | undefined): Promise<void> {
  if (seed) await filteredCopy(seed.from, seed.abs, dir);
  await ownAndMode(dir, m.uid ?? 0, m.gid ?? 0, m.mode ?? 0o755);
}

/**
 * Removes the temporary siblings of `dir` that seeders which crashed or were killed left behind.
 * Only called while holding `dir`'s seed lock, so no live seeder is using any of them; a failure
 * here must not fail the build, the next seed tries again.
 */
async function removeSeedLeftovers(dir: string): Promise<void> {
  const prefix = `${path.basename(dir)}${SEEDING_INFIX}`;
  const names = await readdir(path.dirname(dir)).catch(() => []);
  for (const name of names.filter((n) => n.startsWith(prefix))) {
    await rm(path.join(path.dirname(dir), name), { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * Builds `dir` completely in a unique temporary sibling and renames it into place, so nobody ever
 * mounts a half-seeded or not-yet-chowned directory, and a seed that fails or is interrupted leaves
 * no directory that later builds would take as seeded. If `dir` appeared meanwhile, that one wins.
 */
async function publishCacheDir(dir: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = await mkdtemp(`${dir}${SEEDING_INFIX}`);
  try {
    await fill(tmp);
    await rename(tmp, dir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    if (!errnoIs(e, "EEXIST", "ENOTEMPTY")) throw e;
  }
}

/**
 * Takes the flock that serialises the creation of `dir`. Renaming into place alone is not enough: a
 * rename replaces an empty directory, so a second seeder could swap a new, still empty cache
 * directory for its own after the first RUN already mounted it. Without `flock` (a host that has
 * none) seeding goes on unlocked, as before, rather than failing every first use of a shared cache.
 */
async function seedLock(dir: string, signal?: AbortSignal): Promise<Unlock | undefined> {
  try {
    return await lockFile(`${dir}.seed.lock`, true, signal);
  } catch (e) {
    if (hasCode(e, "RUN_CACHE_LOCK")) return undefined;
    throw e;
  }
}

/**
 * Makes sure the persistent cache directory `dir` exists, creating and seeding it atomically when
 * it does not. The seed is resolved before the seed lock is taken, so its holder never waits for
 * another stage; an existing directory costs one `lstat`.
 */
async function ensureCacheDir(
  dir: string,
  m: MountSpec,
  seedOf: () => Promise<CacheSeed | undefined>,
  signal?: AbortSignal,
): Promise<void> {
  if (await pathExists(dir)) return;
  const seed = await seedOf();
  const unlock = await seedLock(dir, signal);
  try {
    if (await pathExists(dir)) return;
    if (unlock) await removeSeedLeftovers(dir);
    await publishCacheDir(dir, (tmp) => fillCacheDir(tmp, m, seed));
  } finally {
    await unlock?.();
  }
}

/**
 * The host directory a cache mount binds: its persistent one, or a fresh throw-away `slot` for a
 * `private` mount whose directory is busy — locked by another RUN, or already mounted by an earlier
 * `locked`/`private` mount of this RUN. `claimed` records the latter.
 */
function cacheSource(m: MountSpec, dir: string, locks: CacheLocks, claimed: Set<string>, slot: string): string {
  if (m.sharing === "private" && (locks.get(dir) === undefined || claimed.has(dir))) return slot;
  if (takesCacheLock(m)) claimed.add(dir);
  return dir;
}

/**
 * Turns a RUN's `--mount` specs into runner mounts (BuildKit semantics): `bind` from the context or
 * a stage/image root (read-only; `rw` works on a discarded copy), `cache` (persisted under
 * `opts.cacheMountsDir` or `<stateDir>/cache-mounts`, `sharing=locked` waits for an exclusive lock,
 * `private` gets a fresh directory while another holder uses it; the locks of one RUN are taken once
 * each, in sorted order, after every `from=` root is open; a new directory is seeded aside and renamed
 * into place), `tmpfs`, `secret` (a file under
 * `scratch`, or an env var with `env=`) and `ssh` (`SSH_AUTH_SOCK` bound in). Targets are
 * container paths; relative ones are taken from `cwd`. `scratch` must be an empty host directory.
 */
export async function prepareMounts(
  specs: readonly MountSpec[],
  ctx: StepContext,
  cwd: string,
  scratch: string,
): Promise<PreparedMounts> {
  const mounts: RunMount[] = [];
  const env: string[] = [];
  const unlocks: Unlock[] = [];
  const release = async (): Promise<void> => {
    for (const u of unlocks.splice(0)) await u();
  };
  const target = (t: string): string => path.posix.resolve(cwd, t);
  let n = 0;
  let sshIndex = 0;
  const root = cacheRoot(ctx.opts);
  try {
    if (specs.some((m) => m.type === "cache")) await mkdir(root, { recursive: true, mode: 0o700 });
    const roots = await openFromRoots(specs, ctx, root);
    const locks = await lockCacheDirs(specs, root, ctx.signal);
    for (const unlock of locks.values()) if (unlock) unlocks.push(unlock);
    const claimed = new Set<string>();
    for (const m of specs) {
      const slot = path.join(scratch, `m${n++}`);
      switch (m.type) {
        case "bind": {
          const from = m.from === undefined ? ctx.context : (roots.get(m.from) ?? (await ctx.fromRoot(m.from)));
          const [src] = await from.resolve(m.source ?? ".");
          if (!src) throw mountError("RUN_MOUNT_SOURCE", `RUN --mount: source ${m.source ?? "."} not found`);
          let source = src.abs;
          const readonly = m.readonly !== false;
          if (!readonly || (await anyExcluded(from, src.rel, src.abs))) {
            await filteredCopy(from, src.abs, slot);
            source = slot;
          }
          mounts.push({ kind: "bind", source, target: target(m.target as string), readonly });
          break;
        }
        case "cache": {
          const dir = cacheSource(m, cacheDirOf(root, m), locks, claimed, slot);
          const seedOf = (): Promise<CacheSeed | undefined> => cacheSeed(m, ctx, roots);
          if (dir === slot) {
            await mkdir(slot);
            await fillCacheDir(slot, m, await seedOf());
          } else {
            await ensureCacheDir(dir, m, seedOf, ctx.signal);
          }
          mounts.push({ kind: "bind", source: dir, target: target(m.target as string), readonly: m.readonly === true });
          break;
        }
        case "tmpfs":
          mounts.push({ kind: "tmpfs", target: target(m.target as string), sizeBytes: m.size });
          break;
        case "secret": {
          const id = m.id as string;
          const value = await secretValue(ctx.opts.secrets ?? [], id, ctx.opts.env);
          if (value === undefined) {
            if (m.required === true) {
              throw mountError("RUN_SECRET_NOT_FOUND", `secret ${id}: not found (pass it with --secret id=${id},…)`);
            }
            break;
          }
          const text = value.toString("utf8");
          if (m.env !== undefined) env.push(`${m.env}=${text}`);
          if (m.target !== undefined) {
            await writeFile(slot, value, { mode: 0o600 });
            await ownAndMode(slot, m.uid ?? 0, m.gid ?? 0, m.mode ?? 0o400);
            mounts.push({ kind: "bind", source: slot, target: target(m.target), readonly: true });
          }
          break;
        }
        case "ssh": {
          const sock = m.id === "default" ? ctx.opts.env.SSH_AUTH_SOCK : undefined;
          if (sock === undefined || sock === "") {
            if (m.required === true) {
              throw mountError(
                "RUN_SSH_NOT_FOUND",
                `ssh ${m.id ?? "default"}: no agent socket (kiln forwards SSH_AUTH_SOCK for id=default)`,
              );
            }
            break;
          }
          const t = target(m.target ?? `/run/buildkit/ssh_agent.${sshIndex}`);
          if (sshIndex === 0) env.push(`SSH_AUTH_SOCK=${t}`);
          sshIndex++;
          mounts.push({ kind: "bind", source: sock, target: t, readonly: false });
          break;
        }
      }
    }
  } catch (e) {
    await release();
    throw e;
  }
  return { mounts, env, release };
}
