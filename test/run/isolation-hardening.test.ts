/**
 * The RUN isolation against a hostile step (audit findings F1–F5), through the real helper and runner, as
 * root: the chroot escape (a static C program compiled here with gcc) cannot read a host canary; kernel
 * knobs in /proc and every mount below /sys are read-only; /dev holds only the expected nodes; the step's
 * capabilities are Docker's default set; a step that swaps /etc or /dev for a symlink to a host directory
 * does not make kiln's cleanup delete files there; ids above 4294967294 are refused; a /dev or /sys the
 * image made a symlink is refused. Needs root, namespaces and busybox (skips otherwise).
 * KILN_ISO_HELPER=<path> runs the helper-level checks against another helper (e.g. an older build).
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, readdir, symlink, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { hasCode } from "../../src/common/errors.js";
import { lookupUser } from "../../src/fs/lookup-user.js";
import { createRunner, probeIsolation } from "../../src/run/index.js";
import { buildHelper, makeBusyboxRoot } from "../../src/run/testing/busybox-root.js";
import { testRunSpec } from "../../src/run/testing/run-spec.js";
import type { IsolationProbe, RunSpec, Runner } from "../../src/run/types.js";
import { removeDir, tempDir } from "../support/tmp.js";

const setup = buildHelper();
const helper = process.env.KILN_ISO_HELPER ?? setup.helper ?? "";
const hasGcc = spawnSync("gcc", ["--version"]).status === 0;

/** Docker's default capabilities: CHOWN … AUDIT_WRITE, SETFCAP (bits 0,1,3-8,10,13,18,27,29,31). */
const DOCKER_CAPS = 0xa80425fbn;

const ESCAPE_C = `
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {
  char buf[256];
  if (argc < 2) return 2;
  mkdir("/escape-dir", 0755);
  if (chroot("/escape-dir") != 0) perror("chroot");
  for (int i = 0; i < 64; i++) if (chdir("..") != 0) break;
  if (chroot(".") != 0) perror("chroot .");
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) { perror("open"); return 3; }
  ssize_t n = read(fd, buf, sizeof buf - 1);
  if (n < 0) return 4;
  buf[n] = 0;
  printf("ESCAPED:%s\\n", buf);
  return 0;
}
`;

interface Out {
  exitCode: number;
  stdout: string;
  stderr: string;
}

async function run(runner: Runner, spec: Partial<RunSpec> & { root: string; argv: string[] }): Promise<Out> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const r = await runner.run(testRunSpec(spec), { stdout: (c) => out.push(c), stderr: (c) => err.push(c) });
  return { exitCode: r.exitCode, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

/** The capability sets of /proc/self/status as numbers. */
function caps(status: string): Record<string, bigint> {
  const out: Record<string, bigint> = {};
  for (const m of status.matchAll(/^Cap(\w+):\s+([0-9a-f]+)$/gm)) out[m[1] as string] = BigInt(`0x${m[2] as string}`);
  return out;
}

describe("RUN isolation hardening (real helper, as root)", { skip: setup.reason ?? false }, () => {
  let dir: string;
  let root: string;
  let probe: IsolationProbe;
  let runners: [string, Runner][];
  before(async () => {
    dir = await tempDir("kiln-iso-");
    await chmod(dir, 0o755);
    root = await makeBusyboxRoot();
    for (const a of ["grep", "wc", "mv", "ln", "rm", "rmdir", "head"])
      await symlink("busybox", path.join(root, "bin", a));
    probe = await probeIsolation({ helperPath: helper, scratchDir: dir });
    runners = [
      ["chroot", createRunner("chroot", probe, { helperPath: helper })],
      ["plain chroot", createRunner("chroot", { ...probe, mountns: false, pidns: false }, { helperPath: helper })],
      ["userns", createRunner("userns", probe, { helperPath: helper })],
    ];
  });
  after(async () => {
    await removeDir(root);
    await removeDir(dir);
  });

  it("F1: the chroot-in-chroot escape reads no host file (every back-end)", async (t) => {
    if (!hasGcc) {
      t.skip("gcc is not installed: cannot compile the escape program");
      return;
    }
    const src = path.join(dir, "escape.c");
    await writeFile(src, ESCAPE_C);
    const cc = spawnSync("gcc", ["-static", "-O2", "-o", path.join(root, "bin", "escape"), src], { encoding: "utf8" });
    if (cc.status !== 0) {
      t.skip(`gcc cannot link a static program here: ${cc.stderr.trim()}`);
      return;
    }
    const canary = path.join(dir, "host-canary");
    await writeFile(canary, "host-secret");
    await chmod(canary, 0o644);
    for (const [name, runner] of runners) {
      const r = await run(runner, { root, argv: ["/bin/escape", canary] });
      assert.doesNotMatch(r.stdout, /host-secret/, `${name}: the step read the host canary`);
      assert.notEqual(r.exitCode, 0, `${name}: ${r.stdout}${r.stderr}`);
      // Without a mount namespace the root is entered by chroot: CAP_SYS_CHROOT is gone.
      if (name === "plain chroot") assert.match(r.stderr, /^chroot: Operation not permitted/m);
    }
    // Rootless (the helper as nobody, user namespace): the canary is world-readable, so only the escape hides it.
    const nobody = spawnSync(
      "setpriv",
      [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        helper,
        ...["--root", root, "--userns", "--mountns", "--pidns", "--proc", "--dev", "--sys"],
        ...["--", "/bin/escape", canary],
      ],
      { encoding: "utf8" },
    );
    if (nobody.error === undefined) {
      assert.doesNotMatch(nobody.stdout, /host-secret/, "rootless: the step read the host canary");
    }
  });

  it("RUN --mount targets below /dev are made in the private /dev (a bind of a file, a tmpfs, nested)", async () => {
    const data = path.join(dir, "dev-mount-data");
    await writeFile(data, "bound");
    await chmod(data, 0o644);
    for (const [name, runner] of runners.filter(([n]) => n !== "plain chroot")) {
      const r = await run(runner, {
        root,
        argv: ["/bin/sh", "-c", "cat /dev/net/tun && echo x > /dev/scratch/f && cat /dev/scratch/f"],
        mounts: [
          { kind: "bind", source: data, target: "/dev/net/tun", readonly: true },
          { kind: "tmpfs", target: "/dev/scratch" },
        ],
      });
      assert.equal(r.exitCode, 0, `${name}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stdout, "boundx\n", name);
    }
  });

  it("F1: kernel knobs in /proc are read-only, leaky files masked, every mount at or below /sys read-only", async () => {
    // Writes the current value back: harmless if the write were allowed (it is the host's setting).
    const knob = 'v=$(cat /proc/sys/kernel/core_pattern) && echo "$v" > /proc/sys/kernel/core_pattern && echo WROTE';
    // Also without a pid namespace, where the host's /proc is bound (and hardened) instead of a fresh one.
    const noPidns = createRunner("chroot", { ...probe, pidns: false }, { helperPath: helper });
    for (const [network, runner] of [
      ["host", runners[0]?.[1] as Runner],
      ["none", runners[0]?.[1] as Runner],
      ["host, no pid namespace", noPidns],
    ] as const) {
      const r = await run(runner, {
        root,
        network: network === "none" ? "none" : "host",
        argv: [
          "sh",
          "-c",
          `${knob}; grep -E '^[^ ]+ [^ ]+ [^ ]+ [^ ]+ /(sys|proc/(sys|irq|bus|sysrq-trigger))( |/)' /proc/self/mountinfo`,
        ],
      });
      assert.doesNotMatch(r.stdout, /WROTE/, `network ${network}: /proc/sys/kernel/core_pattern was writable`);
      const mounts = r.stdout.trim().split("\n");
      assert.ok(
        mounts.some((l) => / \/sys /.test(l)),
        `network ${network}: /sys is mounted: ${r.stdout}`,
      );
      assert.ok(
        mounts.some((l) => / \/proc\/sys /.test(l)),
        `network ${network}: /proc/sys is its own mount`,
      );
      for (const line of mounts) {
        const opts = line.split(" ")[5] ?? "";
        assert.ok(opts.split(",").includes("ro"), `network ${network}: writable mount ${line}`);
      }
    }
    const masked = await run(runners[0]?.[1] as Runner, {
      root,
      argv: [
        "sh",
        "-c",
        "for f in kcore keys timer_list sched_debug; do [ -e /proc/$f ] && wc -c < /proc/$f; done; true",
      ],
    });
    for (const n of masked.stdout
      .trim()
      .split(/\s+/)
      .filter((s) => s !== ""))
      assert.equal(n, "0", masked.stdout);
  });

  it("F1: /dev is a tmpfs with only the expected nodes (no host block devices)", async () => {
    const expected = [
      "fd",
      "full",
      "null",
      "ptmx",
      "pts",
      "random",
      "shm",
      "stderr",
      "stdin",
      "stdout",
      "tty",
      "urandom",
      "zero",
    ];
    for (const [name, runner] of [runners[0], runners[2]] as [string, Runner][]) {
      const r = await run(runner, {
        root,
        argv: [
          "sh",
          "-c",
          "ls -A /dev; echo -- ; echo ok > /dev/null && head -c 4 /dev/zero | wc -c && echo x > /dev/shm/x && cat /dev/shm/x",
        ],
      });
      assert.equal(r.exitCode, 0, `${name}: ${r.stderr}`);
      const [listing, checks] = r.stdout.split("--\n");
      assert.deepEqual(listing?.trim().split(/\s+/).sort(), expected, `${name}: /dev holds ${listing}`);
      assert.deepEqual(checks?.trim().split("\n"), ["4", "x"], `${name}: the nodes work`);
    }
  });

  it("F1: the step's capabilities are Docker's default set (chroot and userns back-ends)", async () => {
    // Plain chroot has no /proc to read: the escape test shows chroot(2) failing with EPERM there.
    for (const [name, runner] of runners.filter(([n]) => n !== "plain chroot")) {
      const r = await run(runner, { root, argv: ["cat", "/proc/self/status"] });
      const c = caps(r.stdout);
      const want = DOCKER_CAPS;
      assert.equal(c.Bnd?.toString(16), want.toString(16), `${name}: bounding set`);
      assert.equal(c.Eff?.toString(16), want.toString(16), `${name}: effective set`);
      assert.equal(c.Inh, 0n, `${name}: inheritable set`);
      assert.equal(c.Amb ?? 0n, 0n, `${name}: ambient set`);
    }
    const user = await run(runners[0]?.[1] as Runner, {
      root,
      argv: ["cat", "/proc/self/status"],
      uid: 1000,
      gid: 1000,
    });
    const c = caps(user.stdout);
    assert.deepEqual([c.Eff, c.Bnd?.toString(16)], [0n, DOCKER_CAPS.toString(16)], "a non-root step has none");
  });

  it("F2: a step that replaces /etc by a symlink to a host dir does not make the cleanup delete files there", async () => {
    const bare = await makeBusyboxRoot();
    for (const a of ["mv", "ln"]) await symlink("busybox", path.join(bare, "bin", a));
    const hostEtc = path.join(dir, "host-etc");
    await mkdir(hostEtc);
    await writeFile(path.join(hostEtc, "resolv.conf"), "nameserver 192.0.2.1\n");
    await writeFile(path.join(hostEtc, "hosts"), "192.0.2.1 canary\n");
    try {
      const r = await run(runners[0]?.[1] as Runner, {
        root: bare,
        hostNetworkFiles: true,
        argv: ["sh", "-c", `mv /etc /etc.old && ln -s ${hostEtc} /etc`],
      });
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(await readFile(path.join(hostEtc, "resolv.conf"), "utf8"), "nameserver 192.0.2.1\n");
      assert.equal(await readFile(path.join(hostEtc, "hosts"), "utf8"), "192.0.2.1 canary\n");
    } finally {
      await removeDir(bare);
    }
  });

  it("F2: a plain-chroot step that replaces /dev by a symlink to a host dir keeps the device nodes there", async () => {
    const bare = await makeBusyboxRoot();
    for (const a of ["mv", "ln"]) await symlink("busybox", path.join(bare, "bin", a));
    const hostDev = path.join(dir, "host-dev");
    await mkdir(hostDev);
    const mknod = spawnSync("mknod", [path.join(hostDev, "null"), "c", "1", "3"]);
    assert.equal(mknod.status, 0, "mknod works as root");
    try {
      const r = await run(runners[1]?.[1] as Runner, {
        root: bare,
        argv: ["sh", "-c", `mv /dev /dev.old && ln -s ${hostDev} /dev`],
      });
      assert.equal(r.exitCode, 0, r.stderr);
      assert.deepEqual(await readdir(hostDev), ["null"]);
    } finally {
      await removeDir(bare);
    }
  });

  it("F3: a uid above 4294967294 is refused by the user lookup and by the helper", async () => {
    const bare = await makeBusyboxRoot();
    try {
      await writeFile(
        path.join(bare, "etc", "passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:4294967296:0::/:/bin/sh\nbig:x:1000:4294967296::/:/bin/sh\n",
      );
      await assert.rejects(lookupUser(bare, "app"), (e: unknown) => {
        assert.ok(hasCode(e, "USER_ID_INVALID"));
        assert.match(e.message, /4294967296.*4294967294/);
        return true;
      });
      await assert.rejects(lookupUser(bare, "big"), { code: "USER_ID_INVALID" });
      await assert.rejects(lookupUser(bare, "4294967296"), { code: "USER_ID_INVALID" });
      await assert.rejects(lookupUser(bare, "0:4294967295"), { code: "USER_ID_INVALID" });
      assert.equal((await lookupUser(bare, "4294967294")).uid, 4294967294);
      await assert.rejects(
        run(runners[0]?.[1] as Runner, { root: bare, argv: ["id", "-u"], uid: 4294967296 }),
        (e: unknown) => {
          assert.ok(hasCode(e, "RUN_SETUP_FAILED"), String(e));
          assert.match(e.message, /4294967296/);
          return true;
        },
      );
      await assert.rejects(
        run(runners[0]?.[1] as Runner, { root: bare, argv: ["id", "-u"], uid: 1, groups: [4294967295] }),
        { code: "RUN_SETUP_FAILED" },
      );
    } finally {
      await removeDir(bare);
    }
  });

  it("F4/F5: a /dev or /sys the image made a symlink is refused, by the runner and by the helper", async () => {
    const hostDir = path.join(dir, "host-target");
    await mkdir(hostDir);
    for (const [name, link] of [
      ["dev", hostDir],
      ["sys", ".."],
      ["proc", "/tmp"],
    ] as const) {
      const bare = await makeBusyboxRoot();
      try {
        await symlink(link, path.join(bare, name));
        for (const runner of [runners[0]?.[1], ...(name === "dev" ? [runners[1]?.[1]] : [])] as Runner[]) {
          await assert.rejects(run(runner, { root: bare, argv: ["true"] }), (e: unknown) => {
            assert.ok(hasCode(e, "RUN_MOUNT_TARGET"), String(e));
            assert.match(e.message, new RegExp(`/${name} is a symlink`));
            return true;
          });
        }
        // The helper itself, without the runner's check.
        for (const d of ["proc", "dev", "sys"]) if (d !== name) await mkdir(path.join(bare, d));
        const r = spawnSync(
          helper,
          ["--root", bare, "--mountns", "--pidns", "--proc", "--dev", "--sys", "--", "/bin/true"],
          {
            stdio: ["ignore", "pipe", "pipe", "pipe"],
            encoding: "utf8",
          },
        );
        assert.equal(r.status, 127, `${name}: the helper refuses`);
        assert.match(String(r.output[3]), new RegExp(`error mount 40 .*/${name} is a symlink`));
        assert.deepEqual(await readdir(hostDir), [], "nothing was made in the host directory");
        assert.equal(existsSync(path.join(bare, "tmp", "host-target")), false);
      } finally {
        await removeDir(bare);
      }
    }
  });
});
