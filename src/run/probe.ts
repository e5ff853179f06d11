import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { KilnError } from "../common/errors.js";
import { isInContainer } from "./container-detect.js";
import { findHelper } from "./helper-path.js";
import { hostDetectionFs } from "./host-detection-fs.js";
import type { HelperError } from "./helper-status.js";
import { runHelper } from "./spawn-helper.js";
import type { IsolationProbe } from "./types.js";

const MISSING_COMMAND = "/.kiln-probe-missing-command";
const ignore = (): void => {};

/**
 * True when the helper gets through every setup step for `options` and fails only at exec (the probe
 * root holds no command on purpose).
 */
async function reachesExec(helper: string, options: string[]): Promise<boolean> {
  try {
    await runHelper(
      { helper, options, argv: [MISSING_COMMAND], env: [], cwd: "/" },
      { stdout: ignore, stderr: ignore },
    );
    return false;
  } catch (e) {
    const cause = e instanceof KilnError ? (e.cause as HelperError | undefined) : undefined;
    return cause?.stage === "exec";
  }
}

/**
 * Finds out which isolation mechanisms work here by actually trying each with the kiln-exec helper
 * against an empty temporary root. Takes a few milliseconds per mechanism; callers cache the result.
 * Without a helper only `inContainer` can be true.
 */
export async function probeIsolation(helperPath?: string): Promise<IsolationProbe> {
  const inContainer = isInContainer(hostDetectionFs);
  const helper = findHelper(helperPath);
  if (helper === undefined) {
    return { chroot: false, mountns: false, pidns: false, userns: false, netns: false, inContainer };
  }
  const root = await mkdtemp(path.join(tmpdir(), "kiln-probe-"));
  try {
    await mkdir(path.join(root, "proc"));
    await mkdir(path.join(root, "dev"));
    const r = ["--root", root];
    const user = ["--userns", "--mountns", ...r];
    const [chroot, mountns, pidns, netns, userns, userPidns, userNetns] = await Promise.all([
      reachesExec(helper, r),
      reachesExec(helper, [...r, "--mountns", "--dev"]),
      reachesExec(helper, [...r, "--mountns", "--pidns", "--proc"]),
      reachesExec(helper, [...r, "--netns"]),
      reachesExec(helper, [...user, "--dev"]),
      reachesExec(helper, [...user, "--pidns", "--proc"]),
      reachesExec(helper, [...user, "--netns"]),
    ]);
    return {
      chroot,
      mountns: chroot && mountns,
      pidns: (chroot && pidns) || (userns && userPidns),
      userns,
      netns: netns || (userns && userNetns),
      inContainer,
    };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
