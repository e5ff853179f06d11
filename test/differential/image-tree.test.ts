/**
 * The differential reader must see what an independent tar writer (GNU tar) wrote: types, modes with special
 * bits, owners, hardlinks, long names, xattrs, whiteouts across layers. Each fixture is built with `tar`.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmod, link, mkdir, rm, symlink, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { tempDirFor } from "../support/tmp.js";
import { compareImages } from "./compare.js";
import { readDockerArchive } from "./image-tree.js";

const execFileAsync = promisify(execFile);

async function tarDir(src: string, out: string): Promise<void> {
  await execFileAsync("tar", ["--xattrs", "--xattrs-include=*", "--numeric-owner", "-C", src, "-cf", out, "."]);
}

/** Builds a docker-archive at `<dir>/img.tar` from layer directories (in order) and a config. */
async function dockerArchive(dir: string, layers: string[], config: object): Promise<string> {
  const out = path.join(dir, "archive");
  await mkdir(out, { recursive: true });
  const names: string[] = [];
  for (const [i, l] of layers.entries()) {
    await tarDir(l, path.join(out, `layer${i}.tar`));
    names.push(`layer${i}.tar`);
  }
  await writeFile(path.join(out, "config.json"), JSON.stringify(config));
  await writeFile(path.join(out, "manifest.json"), JSON.stringify([{ Config: "config.json", Layers: names }]));
  const file = path.join(dir, "img.tar");
  await execFileAsync("tar", ["-C", out, "-cf", file, "."]);
  return file;
}

test("readDockerArchive applies layers with whiteouts and keeps modes, owners, links, caps", async (t) => {
  const dir = await tempDirFor(t, "diff-tree");
  const l0 = path.join(dir, "l0");
  const l1 = path.join(dir, "l1");
  await mkdir(path.join(l0, "gone", "deep"), { recursive: true });
  await mkdir(path.join(l0, "opaque"), { recursive: true });
  await writeFile(path.join(l0, "gone", "deep", "f"), "x");
  await writeFile(path.join(l0, "opaque", "old"), "old");
  const long = "n".repeat(150);
  await writeFile(path.join(l0, long), "long name");
  await writeFile(path.join(l0, "suid"), "s");
  await chmod(path.join(l0, "suid"), 0o4755);
  await link(path.join(l0, "suid"), path.join(l0, "suid-link"));
  await symlink("/nowhere", path.join(l0, "dangling"));
  await execFileAsync("setcap", ["cap_net_raw+ep", path.join(l0, "suid")]);
  await writeFile(path.join(l0, "noted"), "n");
  await execFileAsync("setfattr", ["-n", "user.note", "-v", "hi", path.join(l0, "noted")]);
  await mkdir(path.join(l1, "opaque"), { recursive: true });
  await writeFile(path.join(l1, ".wh.gone"), "");
  await writeFile(path.join(l1, "opaque", ".wh..wh..opq"), "");
  await writeFile(path.join(l1, "opaque", "new"), "new");
  const file = await dockerArchive(dir, [l0, l1], { architecture: "amd64", os: "linux", config: { Env: ["A=1"] } });

  const img = await readDockerArchive(file);
  assert.equal(img.layerCount, 2);
  assert.equal(img.tree.has("/gone"), false);
  assert.equal(img.tree.has("/gone/deep/f"), false);
  assert.equal(img.tree.has("/opaque/old"), false);
  assert.equal(img.tree.get("/opaque/new")?.size, 3);
  assert.equal(img.tree.get(`/${long}`)?.size, 9);
  const suid = img.tree.get("/suid");
  assert.equal(suid?.mode, 0o4755);
  assert.equal(suid?.type, "file");
  assert.match(suid?.capability ?? "", /^[0-9a-f]+$/);
  assert.equal(img.tree.get("/suid-link"), suid, "a hardlink shares its target's entry");
  assert.equal(img.tree.get("/dangling")?.link, "/nowhere");
  assert.equal(suid?.xattrs, undefined, "security.capability is the capability field alone");
  assert.equal(img.tree.get("/noted")?.xattrs, `user.note=${Buffer.from("hi").toString("hex")}`);
  assert.deepEqual(compareImages(img, img), []);

  // A second image differing in one mode, one content and the link group is reported path by path.
  await chmod(path.join(l0, "suid"), 0o755);
  await rm(path.join(l0, "suid-link"));
  await writeFile(path.join(l0, "suid-link"), "s");
  await writeFile(path.join(l1, "opaque", "new"), "NEW");
  await execFileAsync("setfattr", ["-n", "user.note", "-v", "changed", path.join(l0, "noted")]);
  const other = await readDockerArchive(
    await dockerArchive(path.join(dir, "b"), [l0, l1], {
      architecture: "amd64",
      os: "linux",
      config: { Env: ["A=2"] },
    }),
  );
  const diffs = compareImages(img, other);
  assert.ok(
    diffs.some((d) => d.startsWith("/opaque/new: [sha256]")),
    diffs.join("\n"),
  );
  assert.ok(
    diffs.some((d) => d.startsWith("/suid: [mode")),
    diffs.join("\n"),
  );
  assert.ok(
    diffs.some((d) => d.startsWith("/noted: [xattrs]")),
    diffs.join("\n"),
  );
  assert.ok(
    diffs.some((d) => d.startsWith("/suid-link: hardlink group")),
    diffs.join("\n"),
  );
  assert.ok(
    diffs.some((d) => d.startsWith("config.Env:")),
    diffs.join("\n"),
  );
});
