import { describe, it } from "node:test";
import * as assert from "node:assert/strict";
import { findHelper, helperCandidates, KANIKO_HELPER_PATH } from "./helper-path.js";
import { chooseIsolation, createRunner, runnerSupportsMounts } from "./runner.js";
import { probeResult } from "./testing/probe-fixture.js";
import type { IsolationProbe, Runner } from "./types.js";

const none = probeResult({ inContainer: true });

describe("back-end choice", () => {
  it("auto picks the strongest working back-end", () => {
    assert.equal(chooseIsolation({ ...none, chroot: true, mountns: true, userns: true }, true), "chroot");
    assert.equal(chooseIsolation({ ...none, chroot: true, userns: true }, true), "userns");
    assert.equal(chooseIsolation({ ...none, chroot: true }, true), "chroot");
    assert.equal(chooseIsolation(none, true), "in-place");
    assert.equal(chooseIsolation({ ...none, chroot: true, mountns: true }, false), "in-place");
  });

  it("refuses a back-end the probe says does not work", () => {
    assert.throws(() => createRunner("chroot", none), { code: "RUN_ISOLATION_UNSUPPORTED" });
    assert.throws(() => createRunner("userns", none), { code: "RUN_ISOLATION_UNSUPPORTED" });
    assert.equal(createRunner("in-place", none).isolation, "in-place");
  });

  it("looks for the helper in the package, then in /kaniko", () => {
    const c = helperCandidates("file:///pkg/dist/src/run/helper-path.js");
    assert.deepEqual(c.slice(0, 4), [
      "/pkg/dist/src/run/native/kiln-exec",
      "/pkg/dist/src/native/kiln-exec",
      "/pkg/dist/native/kiln-exec",
      "/pkg/native/kiln-exec",
    ]);
    assert.equal(c.at(-1), KANIKO_HELPER_PATH);
    assert.throws(() => findHelper("/nonexistent/kiln-exec"), { code: "RUN_HELPER_NOT_FOUND" });
  });
});

describe("mount support", () => {
  it("only runners in a mount namespace can make RUN mounts", () => {
    const stub = (isolation: Runner["isolation"], probe: IsolationProbe): Runner => ({
      isolation,
      capabilities: probe,
      run: () => Promise.reject(new Error("not used")),
    });
    assert.equal(runnerSupportsMounts(stub("userns", { ...none, userns: true })), true);
    assert.equal(runnerSupportsMounts(stub("chroot", { ...none, chroot: true, mountns: true })), true);
    assert.equal(runnerSupportsMounts(stub("chroot", { ...none, chroot: true })), false);
    assert.equal(runnerSupportsMounts(stub("in-place", { ...none, chroot: true, mountns: true })), false);
  });
});
