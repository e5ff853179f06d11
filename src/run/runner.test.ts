import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as assert from "node:assert/strict";
import { hasCode } from "../common/errors.js";
import { probeIsolation } from "./probe.js";
import { createRunner } from "./runner.js";
import { assertSameTree, buildHelper, makeBusyboxRoot, treeListing } from "./testing/busybox-root.js";
import { testRunSpec } from "./testing/run-spec.js";
import type { IsolationProbe, RunResult, RunSpec, Runner } from "./types.js";

const setup = buildHelper();
const skip = setup.reason ?? false;
if (setup.reason !== undefined) console.log(`skipping RUN back-end tests: ${setup.reason}`);
const helper = setup.helper ?? "";

interface Captured extends RunResult {
  stdout: string;
  stderr: string;
}

async function run(
  runner: Runner,
  spec: Partial<RunSpec> & { root: string; argv: string[] },
  signal?: AbortSignal,
): Promise<Captured> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const r = await runner.run(testRunSpec(spec), { stdout: (c) => out.push(c), stderr: (c) => err.push(c) }, signal);
  return { ...r, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

function pgrep(pattern: string): boolean {
  return spawnSync("pgrep", ["-f", pattern]).status === 0;
}

describe("RUN back-ends (real processes, as root)", { skip }, () => {
  let root: string;
  let probe: IsolationProbe;
  let chroot: Runner;
  before(async () => {
    root = await makeBusyboxRoot();
    probe = await probeIsolation(helper);
    chroot = createRunner("chroot", probe, { helperPath: helper });
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("probe finds chroot, mount, pid, net and user namespaces on this machine", () => {
    assert.equal(probe.chroot, true);
    assert.equal(probe.mountns, true);
    assert.equal(probe.pidns, true);
    assert.equal(probe.netns, true);
    assert.equal(probe.userns, true);
    assert.equal(createRunner("auto", probe, { helperPath: helper }).isolation, "chroot");
  });

  it("propagates exit codes and signals", async () => {
    assert.equal((await run(chroot, { root, argv: ["true"] })).exitCode, 0);
    assert.equal((await run(chroot, { root, argv: ["sh", "-c", "exit 42"] })).exitCode, 42);
    const killed = await run(chroot, { root, argv: ["sh", "-c", "kill -9 $$"] });
    assert.deepEqual([killed.exitCode, killed.signal], [137, "SIGKILL"]);
  });

  it("captures stdout and stderr separately", async () => {
    const r = await run(chroot, { root, argv: ["sh", "-c", "echo out; echo err >&2"] });
    assert.equal(r.stdout, "out\n");
    assert.equal(r.stderr, "err\n");
  });

  it("passes exactly the given env and looks argv[0] up in the image's PATH", async () => {
    const r = await run(chroot, { root, argv: ["env"], env: ["PATH=/bin", "FOO=bar baz"] });
    assert.deepEqual(r.stdout.trim().split("\n").sort(), ["FOO=bar baz", "PATH=/bin"]);
    const noPath = await run(chroot, { root, argv: ["echo", "default PATH works"], env: [] });
    assert.equal(noPath.stdout, "default PATH works\n");
  });

  it("runs in cwd as the given uid, gid and groups", async () => {
    const r = await run(chroot, {
      root,
      argv: ["sh", "-c", "pwd; id -u; id -g; id -G"],
      cwd: "/work",
      uid: 1000,
      gid: 1000,
      groups: [1000, 5],
    });
    const [cwd, uid, gid, groups] = r.stdout.trim().split("\n");
    assert.deepEqual([cwd, uid, gid, groups?.split(" ").sort()], ["/work", "1000", "1000", ["1000", "5"]]);
  });

  it("hides the host: a canary in the host's /tmp is invisible", async () => {
    const canary = path.join(tmpdir(), `kiln-canary-${process.pid}`);
    await writeFile(canary, "host");
    try {
      const r = await run(chroot, { root, argv: ["ls", canary] });
      assert.notEqual(r.exitCode, 0);
    } finally {
      await rm(canary);
    }
  });

  it("provides a fresh /proc of its own pid namespace", async () => {
    const r = await run(chroot, { root, argv: ["sh", "-c", "cat /proc/self/status; echo pid=$$"] });
    assert.match(r.stdout, /^Pid:\s+\d+$/m);
    assert.match(r.stdout, /^pid=[12]$/m);
  });

  it("network none leaves only lo", async () => {
    const r = await run(chroot, { root, argv: ["cat", "/proc/net/dev"], network: "none" });
    const ifaces = r.stdout
      .split("\n")
      .slice(2)
      .filter((l) => l.includes(":"))
      .map((l) => l.split(":")[0]?.trim());
    assert.deepEqual(ifaces, ["lo"]);
  });

  it("kills background processes a step leaves behind (pid namespace, plain chroot, in-place)", async () => {
    const plain = createRunner("chroot", { ...probe, mountns: false, pidns: false }, { helperPath: helper });
    const inPlace = createRunner("in-place", probe, { helperPath: helper });
    const cases: [Runner, string][] = [
      [chroot, "/"],
      [plain, "/"],
      [inPlace, "/tmp"],
    ];
    for (const [i, [runner, cwd]] of cases.entries()) {
      const marker = `${4242000 + i}`;
      const started = Date.now();
      const r = await run(runner, {
        root: runner.isolation === "in-place" ? "/" : root,
        cwd,
        env: runner.isolation === "in-place" ? ["PATH=/usr/bin:/bin"] : ["PATH=/bin"],
        argv: ["sh", "-c", `sleep ${marker} & (setsid sleep ${marker} &) ; echo started`],
      });
      assert.equal(r.stdout, "started\n");
      assert.ok(Date.now() - started < 5000, "returned promptly");
      assert.equal(pgrep(`sleep ${marker}`), false, `no sleep ${marker} survives (${runner.isolation})`);
    }
  });

  it("removes exactly the mount targets it created", async () => {
    const bare = await makeBusyboxRoot();
    const data = await mkdtemp(path.join(tmpdir(), "kiln-data-"));
    try {
      await writeFile(path.join(data, "in-data"), "x");
      await mkdir(path.join(bare, "pre"));
      const beforeTree = await treeListing(bare);
      const rootMtime = (await stat(bare)).mtimeMs;
      const r = await run(chroot, {
        root: bare,
        argv: [
          "sh",
          "-c",
          "cat /mnt/data/in-data; ls /proc/self/status /dev/null /sys/kernel /cache /pre/x; cat /etc/resolv.conf >/dev/null",
        ],
        hostNetworkFiles: true,
        mounts: [
          { kind: "bind", source: data, target: "/mnt/data", readonly: true },
          { kind: "tmpfs", target: "/cache" },
          { kind: "tmpfs", target: "/pre/x" },
        ],
      });
      assert.equal(r.exitCode, 0, r.stderr);
      assert.match(r.stdout, /^x/);
      assertSameTree(await treeListing(bare), beforeTree);
      // Restored through utimes (seconds as a double): equal to well under a millisecond.
      const rootNow = (await stat(bare)).mtimeMs;
      assert.ok(Math.abs(rootNow - rootMtime) < 1, `root mtime ${rootNow} vs ${rootMtime}`);
      const ro = await run(chroot, {
        root: bare,
        argv: ["touch", "/mnt/data/new"],
        mounts: [{ kind: "bind", source: data, target: "/mnt/data", readonly: true }],
      });
      assert.notEqual(ro.exitCode, 0, "read-only bind is read-only");
      assert.equal(existsSync(path.join(data, "new")), false);
    } finally {
      await rm(bare, { recursive: true, force: true });
      await rm(data, { recursive: true, force: true });
    }
  });

  it("plain chroot (no mounts allowed) gets device nodes that are removed afterwards", async () => {
    const plain = createRunner("chroot", { ...probe, mountns: false, pidns: false }, { helperPath: helper });
    const beforeTree = await treeListing(root);
    const r = await run(plain, { root, argv: ["sh", "-c", "echo gone >/dev/null && cat /dev/null && ls /dev"] });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split(/\s+/).sort(), ["full", "null", "random", "tty", "urandom", "zero"]);
    assertSameTree(await treeListing(root), beforeTree);
  });

  it("userns back-end runs (root maps ids onto themselves)", async () => {
    const userns = createRunner("userns", probe, { helperPath: helper });
    const r = await run(userns, { root, argv: ["sh", "-c", "id -u; cat /proc/self/uid_map"], uid: 1000, gid: 1000 });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^1000\n\s+0\s+0\s+4294967295/);
  });

  it("helper works rootless through a user namespace where the kernel allows it", async (t) => {
    await mkdir(path.join(root, "proc"));
    const r = spawnSync(
      "setpriv",
      [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        helper,
        "--userns",
        "--mountns",
        "--pidns",
        "--proc",
        "--root",
        root,
        "--",
        "id",
        "-u",
      ],
      { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
    );
    await rm(path.join(root, "proc"), { recursive: true });
    if (r.status === 127 && r.stderr.includes("userns")) {
      t.skip(`kernel refuses unprivileged user namespaces: ${r.stderr.trim()}`);
      return;
    }
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "0\n");
  });

  it("in-place back-end runs in a host directory without chroot", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "kiln-inplace-"));
    try {
      const inPlace = createRunner("in-place", probe, { helperPath: helper });
      const r = await run(inPlace, {
        root: "/",
        cwd: dir,
        env: ["PATH=/usr/bin:/bin"],
        argv: ["sh", "-c", "pwd; echo here > made"],
      });
      assert.equal(r.stdout, `${dir}\n`);
      assert.equal(await readFile(path.join(dir, "made"), "utf8"), "here\n");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("abort kills a command that ignores SIGTERM within 5 s", async () => {
    const plain = createRunner("chroot", { ...probe, mountns: false, pidns: false }, { helperPath: helper });
    for (const [mode, runner] of [
      ["pid namespace", chroot],
      ["plain chroot", plain],
    ] as const) {
      const ac = new AbortController();
      let abortedAt = 0;
      const abort = (): void => {
        abortedAt = Date.now();
        ac.abort();
      };
      const r = await runner.run(
        testRunSpec({ root, argv: ["sh", "-c", "trap '' TERM; echo ready; sleep 4243000; echo never"] }),
        { stdout: (c) => (c.toString().includes("ready") ? abort() : undefined), stderr: () => undefined },
        ac.signal,
      );
      const took = Date.now() - abortedAt;
      assert.ok(abortedAt > 0 && took < 5000, `${mode}: ended ${took} ms after the abort`);
      assert.ok(r.signal === "SIGKILL" || r.signal === "SIGTERM", `ended by a signal, got ${JSON.stringify(r)}`);
      assert.equal(pgrep("sleep 4243000"), false);
    }
  });

  it("a missing binary is RUN_SETUP_FAILED naming the binary", async () => {
    await assert.rejects(run(chroot, { root, argv: ["/bin/nope"] }), (e: unknown) => {
      assert.ok(hasCode(e, "RUN_SETUP_FAILED"));
      assert.match(e.message, /^\/bin\/nope: no such file or directory in the image/);
      return true;
    });
    await assert.rejects(
      run(chroot, { root, argv: ["true"], cwd: "/missing" }),
      /working directory \/missing does not exist/,
    );
  });
});
