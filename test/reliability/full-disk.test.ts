/**
 * Out of space (small tmpfs mounts; needs root): as the state directory (--kaniko-dir), as the temp dir
 * (TMPDIR, where the state lives without --kaniko-dir) and as the output directory of --tar-path and
 * --oci-layout-path. Every build must fail with a clear one-line error naming the full path and must not
 * leave an image behind: no --tar-path file, no OCI layout whose index names a missing or short blob, no
 * manifest in the registry.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
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
  let smallTmp: string;
  let smallOut: string;
  const mount = async (name: string, size: string): Promise<string> => {
    const dir = path.join(work, name);
    await mkdir(dir);
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, `kiln-test-${name}`, dir]);
    return dir;
  };
  before(async () => {
    ({ reg } = await startBusyboxRegistry());
    work = await tempDir("full-disk");
    small = await mount("small", "6m");
    smallTmp = await mount("small-tmp", "6m");
    smallOut = await mount("small-out", "2m");
  });
  after(async () => {
    await figures.flush();
    for (const dir of [small, smallTmp, smallOut])
      if (dir) for (const m of await mountsUnder(dir)) execFileSync("umount", ["-l", m]);
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

  const pushedManifest = (ref: string): boolean => {
    try {
      execFileSync("skopeo", ["inspect", "--tls-verify=false", `docker://${ref}`], { stdio: "pipe" });
      return true;
    } catch {
      return false;
    }
  };

  test("ENOSPC in TMPDIR (the state dir without --kaniko-dir): clear error, no image", async () => {
    const ctx = path.join(work, "ctx-tmp");
    await mkdir(ctx, { recursive: true });
    await writeFile(
      path.join(ctx, "Dockerfile"),
      `FROM ${reg.host}/busybox:latest\nRUN head -c 3145728 /dev/urandom > /big\n`,
    );
    const tarPath = path.join(work, "out-tmp.tar");
    const r = await runKilnMeasured(
      [
        "build",
        "-f",
        path.join(ctx, "Dockerfile"),
        "-c",
        ctx,
        "--destination",
        `${reg.host}/full-tmp:v`,
        "--insecure",
        "--insecure-pull",
        "--tar-path",
        tarPath,
      ],
      { env: { TMPDIR: smallTmp, KANIKO_DIR: undefined } },
    );
    const problems: string[] = [];
    if (r.code === 0) problems.push("the build succeeded on a full disk");
    if (!/no space|ENOSPC|space left/i.test(r.stderr)) problems.push("the error does not say the disk is full");
    if (/\n\s+at /.test(r.stderr)) problems.push("stack trace printed");
    if (existsSync(tarPath)) problems.push("a --tar-path file was left behind");
    if (pushedManifest(`${reg.host}/full-tmp:v`)) problems.push("a manifest was pushed");
    figures.add(
      "6 MiB tmpfs as TMPDIR (state dir), 3 MiB RUN",
      1,
      problems.length === 0 ? 1 : 0,
      (r.stderr.match(/ERRO.*$/m)?.[0] ?? "").slice(0, 140),
    );
    assert.deepEqual(problems, [], r.stderr.slice(-1500));
  });

  /** Problems of an OCI layout left after a failed write: an index naming a blob that is missing or short. */
  async function layoutProblems(layout: string): Promise<string[]> {
    if (!existsSync(path.join(layout, "index.json"))) return [];
    const out: string[] = [];
    const blob = (d: string): string => path.join(layout, "blobs", ...d.split(":"));
    const check = async (desc: { digest: string; size: number }, what: string): Promise<void> => {
      const st = await stat(blob(desc.digest)).catch(() => undefined);
      if (!st || st.size !== desc.size) out.push(`${what} ${desc.digest} is missing or short`);
    };
    const index = JSON.parse(await readFile(path.join(layout, "index.json"), "utf8")) as {
      manifests: { digest: string; size: number }[];
    };
    for (const m of index.manifests) {
      await check(m, "manifest");
      if (!existsSync(blob(m.digest))) continue;
      const man = JSON.parse(await readFile(blob(m.digest), "utf8")) as {
        config: { digest: string; size: number };
        layers: { digest: string; size: number }[];
      };
      await check(man.config, "config");
      for (const l of man.layers) await check(l, "layer");
    }
    return out;
  }

  test("ENOSPC in the output directory (--tar-path, --oci-layout-path): no corrupt image", async () => {
    const ctx = path.join(work, "ctx-out");
    await mkdir(ctx, { recursive: true });
    // The state dir has room; the 2 MiB output tmpfs cannot hold a 3 MiB incompressible layer.
    await writeFile(
      path.join(ctx, "Dockerfile"),
      `FROM ${reg.host}/busybox:latest\nRUN head -c 3145728 /dev/urandom > /big\n`,
    );
    const rows: [string, string[]][] = [
      ["--tar-path", ["--tar-path", path.join(smallOut, "image.tar")]],
      ["--oci-layout-path", ["--oci-layout-path", path.join(smallOut, "layout")]],
    ];
    for (const [name, flags] of rows) {
      const r = await runKilnMeasured([
        "build",
        "-f",
        path.join(ctx, "Dockerfile"),
        "-c",
        ctx,
        "--no-push",
        "--insecure-pull",
        "--kaniko-dir",
        path.join(work, `state-out-${name.slice(2)}`),
        ...flags,
      ]);
      const problems: string[] = [];
      if (r.code === 0) problems.push("the build succeeded on a full disk");
      if (!/no space|ENOSPC|space left/i.test(r.stderr)) problems.push("the error does not say the disk is full");
      if (/\n\s+at /.test(r.stderr)) problems.push("stack trace printed");
      if (!new RegExp(`writing .*${name}.* to ${smallOut}`).test(r.stderr))
        problems.push("the error does not name the output");
      if (existsSync(path.join(smallOut, "image.tar"))) problems.push("a partial --tar-path file was left behind");
      problems.push(...(await layoutProblems(path.join(smallOut, "layout"))));
      figures.add(
        `2 MiB tmpfs as the output dir: ${name}`,
        1,
        problems.length === 0 ? 1 : 0,
        problems.length > 0 ? problems.join("; ") : (r.stderr.match(/ERRO.*$/m)?.[0] ?? "").slice(0, 140),
      );
      assert.deepEqual(problems, [], r.stderr.slice(-1500));
      // Free the tmpfs for the next row.
      for (const n of await readdir(smallOut)) await removeDir(path.join(smallOut, n));
    }
  });
});
