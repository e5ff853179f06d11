import type { RunSpec } from "../types.js";

/**
 * A RUN spec for tests: root's shell environment (`PATH=/bin`, cwd `/`, uid/gid 0, no groups, host
 * network, no mounts) with `spec` on top.
 */
export function testRunSpec(spec: Pick<RunSpec, "root" | "argv"> & Partial<RunSpec>): RunSpec {
  return {
    env: ["PATH=/bin"],
    cwd: "/",
    uid: 0,
    gid: 0,
    groups: [],
    network: "host",
    mounts: [],
    hostNetworkFiles: false,
    ...spec,
  };
}
