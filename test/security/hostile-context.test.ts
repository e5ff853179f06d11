/**
 * Hostile build contexts through whole builds: symlinks pointing out of the context (absolute and
 * relative, copied as a directory member, named as a COPY source or matched by a `**` wildcard) and `..`
 * sources. The content of a
 * file outside the context must never reach the image; a refused source fails with a one-line error.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, symlink, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { describe, test } from "node:test";
import { gunzipSync } from "node:zlib";
import { Figures, runKilnMeasured } from "../reliability/support.js";
import { useSuiteFixture } from "../support/suite-fixture.js";

const figures = new Figures("hostile build contexts (whole builds)");

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

describe("hostile build contexts", { timeout: 300_000 }, () => {
  let outsideFile: string;
  const secret = `outside-${randomBytes(12).toString("hex")}`;
  const fx = useSuiteFixture("hostile-ctx", {
    setup: async ({ work }) => {
      await mkdir(path.join(work, "outside"));
      outsideFile = path.join(work, "outside", "secret.txt");
      await writeFile(outsideFile, `${secret}\n`);
    },
    teardown: () => figures.flush(),
  });

  const cases: { name: string; copy: string }[] = [
    { name: "directory copy holding symlinks out", copy: "COPY . /ctx/" },
    { name: "absolute symlink named as source", copy: "COPY abs-link /abs" },
    { name: "relative symlink named as source", copy: "COPY rel-link /rel" },
    { name: "symlinked directory named as source", copy: "COPY dir-link/ /dir/" },
    { name: "dot-dot source", copy: "COPY ../outside/secret.txt /dotdot" },
    { name: "glob through a symlinked directory", copy: "COPY dir-link/*.txt /glob/" },
    { name: "`**` wildcard matching symlinks out", copy: "COPY **/*[sl]-link /stars/" },
  ];

  for (const [i, c] of cases.entries()) {
    test(`${c.name}: nothing from outside the context reaches the image`, async () => {
      const ctx = path.join(fx.work, `ctx-${i}`);
      await mkdir(ctx, { recursive: true });
      await writeFile(path.join(ctx, "Dockerfile"), `FROM ${fx.reg.host}/busybox:latest\n${c.copy}\n`);
      await writeFile(path.join(ctx, "ok.txt"), "inside\n");
      await symlink(outsideFile, path.join(ctx, "abs-link"));
      await symlink(path.relative(ctx, outsideFile), path.join(ctx, "rel-link"));
      await symlink(path.dirname(outsideFile), path.join(ctx, "dir-link"));
      const layout = path.join(fx.work, `layout-${i}`);
      const r = await runKilnMeasured([
        "build",
        "-f",
        path.join(ctx, "Dockerfile"),
        "-c",
        ctx,
        "--no-push",
        "--insecure-pull",
        "--oci-layout-path",
        layout,
        "--kaniko-dir",
        path.join(fx.work, `state-${i}`),
      ]);
      const leaks: string[] = [];
      if (/\n\s+at /.test(r.stderr)) leaks.push("stack trace printed");
      if (r.code === 0 && existsSync(layout)) {
        for (const f of await filesUnder(layout)) {
          let b = await readFile(f);
          if (b[0] === 0x1f && b[1] === 0x8b) b = gunzipSync(b);
          if (b.includes(Buffer.from(secret)))
            leaks.push(`${path.relative(layout, f)} holds the outside file's content`);
        }
      }
      const outcome =
        r.code === 0
          ? "built; nothing from outside in any blob"
          : (r.stderr.match(/ERRO.*$/m)?.[0] ?? "").slice(0, 120);
      figures.add(`context: ${c.name}`, 1, leaks.length === 0 ? 1 : 0, outcome);
      assert.deepEqual(leaks, []);
      // The file outside is untouched either way.
      assert.equal(execFileSync("cat", [outsideFile], { encoding: "utf8" }), `${secret}\n`);
    });
  }
});
