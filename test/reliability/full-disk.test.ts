/**
 * An out-of-space state directory (a small tmpfs as --kaniko-dir; needs root to mount it): the build must
 * fail with a clear one-line error and must not leave an image behind (no --tar-path file, no manifest).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { type TestRegistry } from "../support/registry.js";
import { mountsUnder, removeDir, tempDir } from "../support/tmp.js";
import { Figures, runKilnMeasured } from "./support.js";
import { startBusyboxRegistry } from "../support/busybox-registry.js";

const figures = new Figures("out of space");
const isRoot = process.getuid?.() === 0;

describe("a full state directory", { timeout: 300_000, skip: isRoot ? false : "needs root to mount a tmpfs" }, () => {
  let reg: TestRegistry;
  let work: string;
  let small: string;
  before(async () => {
    ({ reg } = await startBusyboxRegistry());
    work = await tempDir("full-disk");
    small = path.join(work, "small");
    await mkdir(small);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=6m", "kiln-test-full", small]);
  });
  after(async () => {
    await figures.flush();
    if (small) for (const m of await mountsUnder(small)) execFileSync("umount", ["-l", m]);
    await reg?.stop();
    if (work) await removeDir(work);
  });

  test("ENOSPC while snapshotting a RUN: clear error, no image written or pushed", async () => {
    const ctx = path.join(work, "ctx");
    await mkdir(ctx, { recursive: true });
    // 3 MiB of incompressible data fits in the root but not again as a spooled layer.
    await writeFile(
      path.join(ctx, "Dockerfile"),
      `FROM ${reg.host}/busybox:latest\nRUN head -c 3145728 /dev/urandom > /big\n`,
    );
    const tarPath = path.join(work, "out.tar");
    const r = await runKilnMeasured([
      "build",
      "-f",
      path.join(ctx, "Dockerfile"),
      "-c",
      ctx,
      "--destination",
      `${reg.host}/full:v`,
      "--insecure",
      "--insecure-pull",
      "--kaniko-dir",
      small,
      "--tar-path",
      tarPath,
    ]);
    const problems: string[] = [];
    if (r.code === 0) problems.push("the build succeeded on a full disk");
    if (!/no space|ENOSPC|space left/i.test(r.stderr)) problems.push("the error does not say the disk is full");
    if (/\n\s+at /.test(r.stderr)) problems.push("stack trace printed");
    if (existsSync(tarPath)) problems.push("a --tar-path file was left behind");
    let pushed = false;
    try {
      execFileSync("skopeo", ["inspect", "--tls-verify=false", `docker://${reg.host}/full:v`], { stdio: "pipe" });
      pushed = true;
    } catch {
      pushed = false;
    }
    if (pushed) problems.push("a manifest was pushed");
    figures.add(
      "6 MiB tmpfs --kaniko-dir, 3 MiB RUN",
      1,
      problems.length === 0 ? 1 : 0,
      (r.stderr.match(/ERRO.*$/m)?.[0] ?? "").slice(0, 140),
    );
    assert.deepEqual(problems, [], r.stderr.slice(-1500));
  });
});
