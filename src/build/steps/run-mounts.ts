import { createHash } from "node:crypto";
import { chmod, chown, cp, lstat, mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { KilnError } from "../../common/errors.js";
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

/**
 * Turns a RUN's `--mount` specs into runner mounts (BuildKit semantics): `bind` from the context or
 * a stage/image root (read-only; `rw` works on a discarded copy), `cache` (persisted under
 * `opts.cacheMountsDir` or `<stateDir>/cache-mounts`, `sharing=locked` waits for an exclusive lock,
 * `private` gets a fresh directory while another holder uses it), `tmpfs`, `secret` (a file under
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
  try {
    for (const m of specs) {
      const slot = path.join(scratch, `m${n++}`);
      switch (m.type) {
        case "bind": {
          const from = m.from !== undefined ? await ctx.fromRoot(m.from) : ctx.context;
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
          const root = ctx.opts.layerStore
            ? path.join(ctx.opts.layerStore.dir, "cache-mounts")
            : (ctx.opts.cacheMountsDir ?? path.join(ctx.opts.stateDir, "cache-mounts"));
          await mkdir(root, { recursive: true, mode: 0o700 });
          let dir = cacheMountDir(root, m.id ?? (m.target as string));
          if (m.sharing === "locked" || m.sharing === "private") {
            const unlock = await lockFile(`${dir}.lock`, m.sharing === "locked", ctx.signal);
            if (unlock) unlocks.push(unlock);
            else dir = slot; // private and busy: a fresh, throw-away cache
          }
          let created = false;
          try {
            await mkdir(dir);
            created = true;
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
          }
          if (created) {
            await ownAndMode(dir, m.uid ?? 0, m.gid ?? 0, m.mode ?? 0o755);
            // BuildKit: `from=`/`source=` seed a cache directory when it is first created.
            if (m.from !== undefined || m.source !== undefined) {
              const from = m.from !== undefined ? await ctx.fromRoot(m.from) : ctx.context;
              const [src] = await from.resolve(m.source ?? ".");
              if (!src) throw mountError("RUN_MOUNT_SOURCE", `RUN --mount: source ${m.source ?? "."} not found`);
              await filteredCopy(from, src.abs, dir);
            }
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
