import { describe, it } from "node:test";
import * as assert from "node:assert/strict";
import { parseProbeLine, probeFromChecks, PROBE_CHECKS, type ProbeCheck } from "./probe.js";
import { probeResult } from "./testing/probe-fixture.js";

const all = (v: boolean): Record<ProbeCheck, boolean> =>
  Object.fromEntries(PROBE_CHECKS.map((c) => [c, v])) as Record<ProbeCheck, boolean>;

describe("kiln-exec --probe line", () => {
  it("parses every check, in any order, ignoring unknown names and surrounding space", () => {
    const line = "userns-netns=0 overlay=1 chroot=1 mountns=1 pidns=0 netns=1 userns=1 userns-pidns=1 future=1\n";
    assert.deepEqual(parseProbeLine(line), {
      chroot: true,
      mountns: true,
      pidns: false,
      netns: true,
      userns: true,
      "userns-pidns": true,
      "userns-netns": false,
      overlay: true,
    });
  });

  it("rejects a line missing a check or with a value other than 0/1 (e.g. an older helper's output)", () => {
    assert.throws(() => parseProbeLine("chroot=1 mountns=1"), { code: "RUN_PROBE_FAILED", message: /"pidns"/ });
    const bad = PROBE_CHECKS.map((c) => `${c}=${c === "netns" ? "yes" : "1"}`).join(" ");
    assert.throws(() => parseProbeLine(bad), { code: "RUN_PROBE_FAILED", message: /"netns"/ });
    assert.throws(() => parseProbeLine(""), { code: "RUN_PROBE_FAILED" });
  });
});

describe("probe checks → mechanisms", () => {
  it("all or nothing", () => {
    assert.deepEqual(
      probeFromChecks(all(true), false),
      probeResult({ chroot: true, mountns: true, pidns: true, userns: true, netns: true, overlay: true }),
    );
    assert.deepEqual(probeFromChecks(all(false), true), probeResult({ inContainer: true }));
  });

  it("rootless: pid and network namespaces count through a user namespace", () => {
    const c = { ...all(false), userns: true, "userns-pidns": true, "userns-netns": true };
    const p = probeFromChecks(c, false);
    assert.deepEqual(
      [p.chroot, p.mountns, p.userns, p.pidns, p.netns, p.overlay],
      [false, false, true, true, true, false],
    );
    // without the user namespace, its sub-checks do not count
    const q = probeFromChecks({ ...c, userns: false }, false);
    assert.deepEqual([q.pidns, q.netns], [false, false]);
  });

  it("mount namespaces, pid namespaces and overlay need chroot; overlay also needs mount namespaces", () => {
    const noChroot = probeFromChecks({ ...all(true), chroot: false, userns: false }, false);
    assert.deepEqual([noChroot.mountns, noChroot.pidns, noChroot.overlay, noChroot.netns], [false, false, false, true]);
    const noMountns = probeFromChecks({ ...all(true), mountns: false }, false);
    assert.deepEqual([noMountns.mountns, noMountns.overlay], [false, false]);
  });
});
