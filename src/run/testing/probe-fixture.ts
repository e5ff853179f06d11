import type { IsolationProbe } from "../types.js";

/**
 * Test support: an isolation probe result in which no mechanism works and kiln runs outside a
 * container, with `overrides` applied (e.g. `probeResult({ chroot: true, mountns: true })`).
 */
export function probeResult(overrides: Partial<IsolationProbe> = {}): IsolationProbe {
  return {
    chroot: false,
    mountns: false,
    pidns: false,
    userns: false,
    netns: false,
    overlay: false,
    inContainer: false,
    ...overrides,
  };
}
