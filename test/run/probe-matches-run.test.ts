/**
 * `kiln-exec --probe` against the real run paths: every mechanism the probe reports available runs a real
 * command with the same helper options, and every one it reports unavailable fails with the helper's setup
 * error (a stage before exec). Checked as root and, through a `setpriv` wrapper around the helper, as the
 * unprivileged user nobody (no chroot, no namespaces without a user namespace). Needs root and busybox.
 */
import * as assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, readdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { KilnError } from "../../src/common/errors.js";
import { createRunner, parseProbeLine, probeIsolation, PROBE_CHECKS, type ProbeCheck } from "../../src/run/index.js";
import type { HelperError } from "../../src/run/helper-status.js";
import { runHelper } from "../../src/run/spawn-helper.js";
import { buildHelper, makeBusyboxRoot } from "../../src/run/testing/busybox-root.js";
import { removeDir, tempDir } from "../support/tmp.js";

const setup = buildHelper();
const hasSetpriv = spawnSync("setpriv", ["--version"]).status === 0;

/** The helper options of each probe check, as RUN uses them (see probe_mode in native/kiln-exec.c). */
const OPTIONS: Record<Exclude<ProbeCheck, "overlay">, string[]> = {
  chroot: [],
  mountns: ["--mountns", "--dev"],
  pidns: ["--mountns", "--pidns", "--proc"],
  netns: ["--netns"],
  userns: ["--userns", "--mountns", "--dev"],
  "userns-pidns": ["--userns", "--mountns", "--pidns", "--proc"],
  "userns-netns": ["--userns", "--mountns", "--netns"],
};

/** Runs `argv` through `helper` with `options`: the exit code, or the helper's setup error. */
async function attempt(helper: string, options: string[], argv: string[]): Promise<number | HelperError> {
  try {
    const r = await runHelper(
      { helper, options, argv, env: ["PATH=/bin"], cwd: "/" },
      { stdout: () => undefined, stderr: () => undefined },
    );
    return r.exitCode;
  } catch (e) {
    if (e instanceof KilnError && e.code === "RUN_SETUP_FAILED") return e.cause as HelperError;
    throw e;
  }
}

for (const who of ["root", "nobody"] as const) {
  const reason =
    setup.reason ?? (who === "nobody" && !hasSetpriv ? "setpriv (util-linux) is not installed" : undefined);
  describe(`kiln-exec --probe matches the real run paths (as ${who})`, { skip: reason ?? false }, () => {
    let dir: string;
    let root: string;
    let helper: string;
    before(async () => {
      dir = await tempDir("kiln-probe-run-");
      await chmod(dir, 0o755);
      root = await makeBusyboxRoot();
      for (const d of ["proc", "dev"]) await mkdir(path.join(root, d));
      helper = setup.helper ?? "";
      if (who === "nobody") {
        helper = path.join(dir, "kiln-exec-as-nobody");
        await writeFile(
          helper,
          `#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups ${setup.helper} "$@"\n`,
          { mode: 0o755 },
        );
      }
    });
    after(async () => {
      await removeDir(root);
      await removeDir(dir);
    });

    const scratch = async (name: string): Promise<string> => {
      const d = path.join(dir, name);
      await mkdir(d, { mode: 0o1777 });
      await chmod(d, 0o1777);
      return d;
    };

    it("each check: available runs a command, unavailable fails before exec", async () => {
      const checks = parseProbeLine(execFileSync(helper, ["--probe", await scratch("probe")], { encoding: "utf8" }));
      assert.deepEqual(await readdir(path.join(dir, "probe")), [], "the probe cleans up");
      if (who === "root") {
        for (const c of PROBE_CHECKS) assert.equal(checks[c], true, `${c} works as root on this machine`);
      } else {
        assert.deepEqual([checks.chroot, checks.mountns, checks.overlay], [false, false, false]);
      }
      for (const [name, options] of Object.entries(OPTIONS)) {
        const got = await attempt(helper, ["--root", root, ...options], ["/bin/true"]);
        if (checks[name as ProbeCheck]) assert.equal(got, 0, `${name}: reported available, so the command runs`);
        else {
          assert.equal(typeof got, "object", `${name}: reported unavailable, so the helper fails`);
          assert.notEqual((got as HelperError).stage, "exec", `${name}: fails in setup, not at exec`);
        }
      }
      // overlay: a command writes through an overlay over the root; the write lands in the upper dir only.
      const ovl = await scratch("ovl");
      const [upper, work] = [path.join(ovl, "upper"), path.join(ovl, "work")];
      for (const d of [upper, work]) await mkdir(d);
      const got = await attempt(
        helper,
        ["--root", root, "--mountns", "--dev", "--overlay", `${root}:${upper}:${work}`],
        ["/bin/touch", "/made-on-overlay"],
      );
      if (checks.overlay) {
        assert.equal(got, 0);
        assert.equal(existsSync(path.join(upper, "made-on-overlay")), true);
        assert.equal(existsSync(path.join(root, "made-on-overlay")), false);
      } else {
        assert.notEqual((got as HelperError).stage, "exec");
      }
    });

    it("the back-end auto picks from the probe runs a command", async () => {
      const probe = await probeIsolation({ helperPath: helper, scratchDir: await scratch("auto") });
      const runner = createRunner("auto", probe, { helperPath: helper });
      assert.equal(runner.isolation, who === "root" ? "chroot" : "userns");
      const r = await runner.run(
        {
          root,
          argv: ["sh", "-c", "echo $$"],
          env: ["PATH=/bin"],
          cwd: "/",
          uid: 0,
          gid: 0,
          groups: [],
          network: probe.netns ? "none" : "host",
          mounts: [],
          hostNetworkFiles: false,
        },
        { stdout: () => undefined, stderr: () => undefined },
      );
      assert.equal(r.exitCode, 0);
    });
  });
}

describe("kiln-exec --probe failures", { skip: setup.reason ?? false }, () => {
  it("an unusable scratch dir is a RUN_PROBE_FAILED error naming it", async () => {
    const dir = await tempDir("kiln-probe-bad-");
    try {
      await writeFile(path.join(dir, "file"), "");
      await assert.rejects(probeIsolation({ helperPath: setup.helper, scratchDir: path.join(dir, "file", "sub") }), {
        code: "RUN_PROBE_FAILED",
        message: /file\/sub/,
      });
    } finally {
      await removeDir(dir);
    }
  });

  it("a helper without --probe (an older kiln-exec) is named as such", async () => {
    const dir = await tempDir("kiln-old-helper-");
    try {
      const old = path.join(dir, "kiln-exec");
      await writeFile(old, '#!/bin/sh\necho "error usage 22 $1: Invalid argument" >&2\nexit 127\n', { mode: 0o755 });
      await assert.rejects(probeIsolation({ helperPath: old, scratchDir: dir }), {
        code: "RUN_PROBE_FAILED",
        message: /older helper without --probe/,
      });
    } finally {
      await removeDir(dir);
    }
  });
});
