/** RUN execution back-ends (design.md §3): in-place, chroot and user-namespace isolation. */
export type { Isolation, IsolationProbe, RunIo, RunMount, RunResult, RunSpec, Runner } from "./types.js";
export type { DetectionFs } from "./container-detect.js";
export { containerEvidence, isInContainer } from "./container-detect.js";
export { hostDetectionFs } from "./host-detection-fs.js";
export { findHelper, helperCandidates, KANIKO_HELPER_PATH } from "./helper-path.js";
export type { ProbeCheck, ProbeOptions } from "./probe.js";
export { parseProbeLine, probeFromChecks, probeIsolation, PROBE_CHECKS } from "./probe.js";
export type { RunnerOptions } from "./runner.js";
export { chooseIsolation, createRunner, runnerSupportsMounts } from "./runner.js";
export { MountTargets, canonicalContainerPath } from "./mount-targets.js";
export type { SpreadResult } from "./spread-dirs.js";
export { spreadSubdirectories } from "./spread-dirs.js";
