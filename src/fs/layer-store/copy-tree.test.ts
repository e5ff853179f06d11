import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  chown,
  link,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readlink,
  rm,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { isRoot } from "../test-helpers.js";
import { copyTree } from "./copy-tree.js";

test(
  "copyTree keeps types, content, modes, owners, times, inner hardlinks and xattrs",
  { skip: !isRoot() },
  async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "kiln-copytree-"));
    try {
      const src = path.join(dir, "src");
      await mkdir(path.join(src, "sub"), { recursive: true, mode: 0o750 });
      await writeFile(path.join(src, "sub", "f"), "content", { mode: 0o640 });
      await chown(path.join(src, "sub", "f"), 123, 456);
      await link(path.join(src, "sub", "f"), path.join(src, "hard"));
      await symlink("sub/f", path.join(src, "link"));
      execFileSync("mkfifo", [path.join(src, "fifo")]);
      execFileSync("setfattr", ["-n", "user.kiln", "-v", "yes", path.join(src, "sub", "f")]);
      execFileSync("setfattr", ["-n", "trusted.overlay.opaque", "-v", "y", path.join(src, "sub")]);
      await utimes(path.join(src, "sub"), 1_600_000_000, 1_600_000_000);
      const dst = path.join(dir, "dst");
      await copyTree(src, dst);
      const f = await lstat(path.join(dst, "sub", "f"));
      assert.equal(await readFile(path.join(dst, "sub", "f"), "utf8"), "content");
      assert.equal(f.mode & 0o7777, 0o640);
      assert.deepEqual([f.uid, f.gid], [123, 456]);
      assert.equal((await lstat(path.join(dst, "hard"))).ino, f.ino, "hardlink kept");
      assert.equal(await readlink(path.join(dst, "link")), "sub/f");
      assert.ok((await lstat(path.join(dst, "fifo"))).isFIFO());
      const sub = await lstat(path.join(dst, "sub"));
      assert.equal(sub.mode & 0o7777, 0o750);
      assert.equal(sub.mtimeMs, 1_600_000_000_000);
      const get = (p: string, n: string): string =>
        execFileSync("getfattr", ["--absolute-names", "--only-values", "-n", n, p], {
          stdio: ["ignore", "pipe", "ignore"],
        }).toString();
      assert.equal(get(path.join(dst, "sub", "f"), "user.kiln"), "yes");
      assert.throws(() => get(path.join(dst, "sub"), "trusted.overlay.opaque"), "overlay xattrs are not copied");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);
