import { constants as fsc } from "node:fs";
import { copyFile, lstat, mkdtemp, rm, stat, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { KilnError } from "../common/errors.js";
import { findHelper } from "./helper-path.js";
import { planMounts, type PlannedMount } from "./mount-order.js";
import { MountTargets, canonicalContainerPath, sameDirectory, type Identity } from "./mount-targets.js";
import { runDirect } from "./spawn-direct.js";
import { runHelper } from "./spawn-helper.js";
import type { Isolation, IsolationProbe, RunIo, RunResult, RunSpec, Runner } from "./types.js";
import { pathExists } from "../common/path-exists.js";

/** Device nodes the helper creates in /dev when nothing can be mounted there. */
const DEV_NODES = ["null", "zero", "full", "random", "urandom", "tty"];
const HOST_NETWORK_FILES = ["/etc/resolv.conf", "/etc/hosts"];

/** Options of {@link createRunner}. */
export interface RunnerOptions {
  /** Path of the kiln-exec helper; default: native/kiln-exec in the package, then /kaniko/kiln-exec. */
  helperPath?: string;
}

function unsupported(what: string, why: string): KilnError {
  return new KilnError("RUN_ISOLATION_UNSUPPORTED", `${what} is not available here: ${why}`);
}

/** True when `runner` can make RUN mounts (`--mount`, heredoc scripts): it runs in a mount namespace. */
export function runnerSupportsMounts(runner: Runner): boolean {
  if (runner.isolation === "userns") return true;
  return runner.isolation === "chroot" && runner.capabilities.mountns;
}

/** Picks the strongest back-end the probe says works: chroot with mounts, userns, plain chroot, in-place. */
export function chooseIsolation(probe: IsolationProbe, helperFound: boolean): Isolation {
  if (!helperFound) return "in-place";
  if (probe.chroot && probe.mountns) return "chroot";
  if (probe.userns) return "userns";
  if (probe.chroot) return "chroot";
  return "in-place";
}

function noColon(p: string, what: string): string {
  if (p.includes(":")) {
    throw new KilnError("RUN_MOUNT_TARGET", `${what} ${p} contains ":", which the RUN helper cannot mount`);
  }
  return p;
}

function credentialOptions(spec: RunSpec): string[] {
  return ["--uid", String(spec.uid), "--gid", String(spec.gid), "--groups", spec.groups.join(",")];
}

async function absentDevNodes(root: string): Promise<string[]> {
  const absent: string[] = [];
  for (const name of DEV_NODES) {
    const p = path.join(root, "dev", name);
    try {
      await lstat(p);
    } catch {
      absent.push(p);
    }
  }
  return absent;
}

/**
 * Makes sure the fixed mount point `p` (/proc, /dev, /sys) is a directory of the root at its own path. The
 * helper mounts there by path: a symlink the image planted (`dev -> /host/dir`, `sys -> ..`) would be
 * followed on the host's side, so it is refused rather than followed.
 * @throws KilnError RUN_MOUNT_TARGET when `p` is a symlink in the image, or not a directory.
 */
async function ensureFixedPoint(targets: MountTargets, root: string, p: string): Promise<void> {
  const canonical = await canonicalContainerPath(root, p);
  if (canonical !== p) {
    throw new KilnError(
      "RUN_MOUNT_TARGET",
      `the image's ${p} is a symlink (to ${canonical}): RUN mounts ${p} at its own path and does not follow links there; make ${p} a directory`,
    );
  }
  await targets.ensure(p, "dir");
}

/** The root's /dev before the run (it holds the device nodes the helper makes), to find it again after. */
async function devIdentity(root: string): Promise<Identity> {
  const st = await lstat(path.join(root, "dev"), { bigint: true });
  return { dev: st.dev, ino: st.ino };
}

/**
 * Removes the device nodes the helper made in the root's /dev, unless the command replaced /dev (with a
 * symlink to the host's /dev, say): then the nodes are wherever the command moved them, inside the root.
 */
async function removeCreatedDevNodes(root: string, dev: Identity | undefined, candidates: string[]): Promise<void> {
  if (dev === undefined || (await sameDirectory(root, path.join(root, "dev"), dev)) !== "same") return;
  for (const p of candidates) {
    try {
      if ((await lstat(p)).isCharacterDevice()) await unlink(p);
    } catch {
      // not created after all
    }
  }
}

/** Runs RUN commands chrooted into the build root, with or without namespaces and mounts. */
class RootedRunner implements Runner {
  constructor(
    readonly isolation: "chroot" | "userns",
    readonly capabilities: IsolationProbe,
    private readonly helper: string,
  ) {}

  async run(spec: RunSpec, io: RunIo, signal?: AbortSignal): Promise<RunResult> {
    const probe = this.capabilities;
    const userns = this.isolation === "userns";
    const withMounts = userns || probe.mountns;
    const targets = new MountTargets(spec.root);
    // Mount points of mounts nested inside another mount live in that mount's source directory.
    const nestedTargets = new Map<string, MountTargets>();
    const ensureTarget = async (p: PlannedMount, kind: "dir" | "file"): Promise<string> => {
      const parent = p.parent?.mount;
      if (parent === undefined) return targets.ensure(p.target, kind);
      const inner = p.target.slice((p.parent?.target ?? "/").replace(/\/$/, "").length) || "/";
      if (parent.kind === "bind" && parent.readonly && (await pathExists(path.join(parent.source, inner))))
        return p.target;
      if (parent.kind === "tmpfs" || parent.readonly) {
        throw new KilnError(
          "RUN_MOUNT_TARGET",
          `cannot mount on ${p.mount.target}: it lies inside the ${parent.kind === "tmpfs" ? "tmpfs" : "read-only"} mount at ${parent.target}`,
        );
      }
      const source = path.resolve(parent.source);
      let t = nestedTargets.get(source);
      if (t === undefined) nestedTargets.set(source, (t = new MountTargets(source)));
      await t.ensure(inner, kind);
      return p.target;
    };
    const options = ["--root", spec.root, "--cwd", spec.cwd, ...credentialOptions(spec)];
    let devNodes: string[] = [];
    let devDir: Identity | undefined;
    let scratch: string | undefined;
    if (spec.network === "none") {
      if (!probe.netns) throw unsupported("network none", "network namespaces cannot be created");
      options.push("--netns");
    }
    if (spec.overlay !== undefined) {
      if (userns || !probe.mountns) {
        throw unsupported("the overlay snapshot back-end", "it needs root with mount namespaces (chroot back-end)");
      }
      const o = spec.overlay;
      options.push("--overlay", [...o.lower, o.upper, o.work].map((p) => noColon(p, "overlay directory")).join(":"));
      // An older helper (--helper-path) lacks --list-upper: no listing, the snapshot walks the upper.
      if (o.listing !== undefined && probe.listUpper === true) options.push("--list-upper", o.listing);
    }
    try {
      if (withMounts) {
        if (userns) options.push("--userns");
        options.push("--mountns");
        if (probe.pidns) options.push("--pidns");
        for (const p of ["/proc", "/dev", "/sys"]) await ensureFixedPoint(targets, spec.root, p);
        options.push("--proc", "--dev", "--sys");
        if (spec.hostNetworkFiles) {
          scratch = await mkdtemp(path.join(tmpdir(), "kiln-run-"));
          for (const file of HOST_NETWORK_FILES) {
            const copy = path.join(scratch, path.basename(file));
            try {
              await copyFile(file, copy, fsc.COPYFILE_FICLONE);
            } catch {
              continue; // the host has no such file: nothing to provide
            }
            options.push("--bind", `${copy}:${noColon(await targets.ensure(file, "file"), "mount target")}:rw`);
          }
        }
        for (const planned of await planMounts(spec.root, spec.mounts)) {
          const m = planned.mount;
          const isDir = m.kind === "tmpfs" || (await stat(path.resolve(m.source))).isDirectory();
          const dst = noColon(await ensureTarget(planned, isDir ? "dir" : "file"), "mount target");
          if (m.kind === "bind") {
            const src = noColon(path.resolve(m.source), "mount source");
            options.push("--bind", `${src}:${dst}:${m.readonly ? "ro" : "rw"}`);
          } else {
            options.push("--tmpfs", m.sizeBytes === undefined ? dst : `${dst}:${m.sizeBytes}`);
          }
        }
      } else {
        if (spec.mounts.length > 0) {
          throw unsupported("RUN --mount", "mounts are not permitted here (chroot without mount namespaces)");
        }
        await ensureFixedPoint(targets, spec.root, "/dev");
        devNodes = await absentDevNodes(spec.root);
        if (devNodes.length > 0) {
          devDir = await devIdentity(spec.root);
          options.push("--devnodes");
        }
      }
      return await runHelper(
        { helper: this.helper, options, argv: spec.argv, env: spec.env, cwd: spec.cwd },
        io,
        signal,
      );
    } finally {
      await removeCreatedDevNodes(spec.root, devDir, devNodes);
      for (const t of [...nestedTargets.values()].reverse()) await t.cleanup();
      await targets.cleanup();
      if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
    }
  }
}

/** Runs RUN commands without chroot, in `root`/`cwd` of the machine (kaniko's model inside its container). */
class InPlaceRunner implements Runner {
  readonly isolation = "in-place";
  constructor(
    readonly capabilities: IsolationProbe,
    private readonly helper: string | undefined,
  ) {}

  async run(spec: RunSpec, io: RunIo, signal?: AbortSignal): Promise<RunResult> {
    if (spec.mounts.length > 0) throw unsupported("RUN --mount", "the in-place back-end does not mount");
    const cwd = path.join(spec.root, spec.cwd);
    const options = ["--cwd", cwd, ...credentialOptions(spec)];
    if (spec.network === "none") {
      if (!this.capabilities.netns || this.helper === undefined) {
        throw unsupported("network none", "network namespaces cannot be created");
      }
      options.push("--netns");
    }
    if (this.helper === undefined) {
      return runDirect({ argv: spec.argv, env: spec.env, cwd, uid: spec.uid, gid: spec.gid }, io, signal);
    }
    return runHelper({ helper: this.helper, options, argv: spec.argv, env: spec.env, cwd }, io, signal);
  }
}

/**
 * Creates the runner for `isolation` ("auto" = the strongest back-end `probe` says works, see
 * {@link chooseIsolation}).
 * @throws KilnError RUN_ISOLATION_UNSUPPORTED when the requested back-end does not work here,
 *   RUN_HELPER_NOT_FOUND when `opts.helperPath` is given but not executable.
 */
export function createRunner(isolation: Isolation | "auto", probe: IsolationProbe, opts: RunnerOptions = {}): Runner {
  const helper = findHelper(opts.helperPath);
  const chosen = isolation === "auto" ? chooseIsolation(probe, helper !== undefined) : isolation;
  if (chosen === "in-place") return new InPlaceRunner(probe, helper);
  if (helper === undefined) {
    throw unsupported(`--isolation=${chosen}`, 'the kiln-exec helper was not found (run "npm run build")');
  }
  if (chosen === "chroot" && !probe.chroot) {
    throw unsupported("--isolation=chroot", "chroot is not permitted (kiln must run as root or with CAP_SYS_CHROOT)");
  }
  if (chosen === "userns" && !probe.userns) {
    throw unsupported("--isolation=userns", "user namespaces cannot be created (disabled by the kernel or seccomp)");
  }
  return new RootedRunner(chosen, probe, helper);
}
