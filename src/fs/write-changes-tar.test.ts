import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createWriteStream } from "node:fs";
import { link, lstat, mkdir, readFile, symlink, utimes, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import { readTar } from "../image/tar/index.js";
import type { TarHeader } from "../image/tar/index.js";
import { findTool } from "./exec-tool.js";
import { FileIndex } from "./file-index.js";
import { applyBuffer, isRoot, listTree, makeSandbox } from "./test-helpers.js";
import { walkChanges } from "./walk-changes.js";
import { changesTarStream, writeChangesTar } from "./write-changes-tar.js";

async function headersOf(buf: Buffer): Promise<TarHeader[]> {
  const out: TarHeader[] = [];
  for await (const e of readTar(Readable.from([buf]))) out.push(e.header);
  return out;
}

async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test("writeChangesTar: sorted, parents included, hardlinks, whiteouts, opaque, GNU tar round trip", async () => {
  const sb = await makeSandbox();
  try {
    const r = sb.root;
    await mkdir(path.join(r, "usr/local/bin"), { recursive: true });
    await writeFile(path.join(r, "usr/local/bin/tool"), "tool-content");
    await link(path.join(r, "usr/local/bin/tool"), path.join(r, "usr/local/bin/tool2"));
    await writeFile(path.join(r, "usr/local/bin/ä-unicode"), "u");
    await symlink("tool", path.join(r, "usr/local/bin/alias"));
    await mkdir(path.join(r, "opq"));
    await writeFile(path.join(r, "opq/only"), "o");
    await utimes(path.join(r, "usr/local/bin/tool"), 1_700_000_000.75, 1_700_000_000.75);
    const changes = {
      changed: [
        "/opq",
        "/opq/only",
        "/usr/local/bin/alias",
        "/usr/local/bin/tool",
        "/usr/local/bin/tool2",
        "/usr/local/bin/ä-unicode",
      ],
      deleted: ["/etc/removed", "/gone-dir"],
      opaqueDirs: ["/opq"],
    };
    const buf = await collect(changesTarStream(r, changes));
    const hs = await headersOf(buf);
    assert.deepEqual(
      hs.map((h) => `${h.type} ${h.name}${h.linkname ? " > " + h.linkname : ""}`),
      [
        "file .wh.gone-dir",
        "dir etc/",
        "file etc/.wh.removed",
        "dir opq/",
        "file opq/.wh..wh..opq",
        "file opq/only",
        "dir usr/",
        "dir usr/local/",
        "dir usr/local/bin/",
        "symlink usr/local/bin/alias > tool",
        "file usr/local/bin/tool",
        "hardlink usr/local/bin/tool2 > usr/local/bin/tool",
        "file usr/local/bin/ä-unicode",
      ].filter((l) => !l.startsWith("dir etc/")),
      "parents of whiteouts are only added when they exist",
    );
    const tool = hs.find((h) => h.name === "usr/local/bin/tool");
    assert.equal(tool?.mtime, 1_700_000_000, "mtimes truncated to seconds");
    assert.equal(tool?.uname, "");
    assert.ok(hs.every((h) => !h.name.startsWith("/")));

    // GNU tar lists it and extracts the same tree.
    const tarFile = path.join(sb.base, "layer.tar");
    await writeFile(tarFile, buf);
    const listing = execFileSync("tar", ["-tvf", tarFile], { encoding: "utf8" });
    assert.match(listing, /usr\/local\/bin\/tool2 link to usr\/local\/bin\/tool/);
    const out = path.join(sb.base, "out");
    await mkdir(out);
    execFileSync("tar", ["-xpf", tarFile, "-C", out]);
    assert.deepEqual(
      (await listTree(out)).filter((l) => !l.includes(".wh.") && l !== "etc/"), // tar creates whiteout parents
      (await listTree(r)).filter((l) => !l.startsWith("etc")),
    );
    assert.equal(await readFile(path.join(out, "usr/local/bin/tool2"), "utf8"), "tool-content");
    assert.equal((await lstat(path.join(out, "usr/local/bin/tool"))).nlink, 2);
  } finally {
    await sb.cleanup();
  }
});

test("epoch clamps mtimes; output is byte-identical across runs", async () => {
  const sb = await makeSandbox();
  try {
    const r = sb.root;
    await mkdir(path.join(r, "a"));
    await writeFile(path.join(r, "a/f"), "f");
    await utimes(path.join(r, "a/f"), 10, 10);
    const changes = { changed: ["/a", "/a/f"], deleted: [], opaqueDirs: [] };
    const one = await collect(changesTarStream(r, changes, { epoch: 1000 }));
    const two = await collect(changesTarStream(r, changes, { epoch: 1000 }));
    assert.deepEqual(one, two);
    const hs = await headersOf(one);
    assert.equal(hs.find((h) => h.name === "a/")?.mtime, 1000);
    assert.equal(hs.find((h) => h.name === "a/f")?.mtime, 10, "older mtimes are kept");
  } finally {
    await sb.cleanup();
  }
});

test("walk -> tar -> apply onto a copy of the base reproduces the tree (incl. setuid, devices, caps)", async (t) => {
  const sb = await makeSandbox();
  try {
    const r = sb.root;
    const baseLayer = await collect(changesTarStream(r, { changed: [], deleted: [], opaqueDirs: [] }));
    assert.equal(baseLayer.length, 1024, "an empty change set is just the end-of-archive blocks");
    const index = new FileIndex();
    await mkdir(path.join(r, "bin"));
    await writeFile(path.join(r, "bin/su"), "su");
    const { chmod } = await import("node:fs/promises");
    await chmod(path.join(r, "bin/su"), 0o4755);
    if (isRoot()) execFileSync("mknod", [path.join(r, "bin/null"), "c", "1", "3"]);
    const hasAttr = (await findTool("setfattr")) !== undefined;
    if (hasAttr) {
      execFileSync("setfattr", [
        "-n",
        "security.capability",
        "-v",
        "0x0100000200040000000000000000000000000000",
        path.join(r, "bin/su"),
      ]);
    } else t.diagnostic("attr not installed: capability round trip not checked");
    const changes = await walkChanges(r, index, { update: true });
    const chunks: Buffer[] = [];
    const tarPath = path.join(sb.base, "l.tar");
    await writeChangesTar(r, changes, createWriteStream(tarPath));
    chunks.push(await readFile(tarPath));
    const copy = path.join(sb.base, "copy");
    await mkdir(copy);
    await applyBuffer(copy, Buffer.concat(chunks));
    assert.deepEqual(await listTree(copy), await listTree(r));
    assert.equal((await lstat(path.join(copy, "bin/su"))).mode & 0o7777, 0o4755);
    if (isRoot())
      assert.equal((await lstat(path.join(copy, "bin/null"))).rdev, (await lstat(path.join(r, "bin/null"))).rdev);
    if (hasAttr) {
      const got = execFileSync(
        "getfattr",
        ["-n", "security.capability", "-e", "hex", "--absolute-names", path.join(copy, "bin/su")],
        {
          encoding: "utf8",
        },
      );
      assert.match(got, /security.capability=0x0100000200040000/);
    }
  } finally {
    await sb.cleanup();
  }
});

test("changesTarStream surfaces errors (abort) as a stream error; walkChanges honours abort", async () => {
  const sb = await makeSandbox();
  try {
    await writeFile(path.join(sb.root, "f"), "f");
    const ac = new AbortController();
    ac.abort();
    const s = changesTarStream(sb.root, { changed: ["/f"], deleted: [], opaqueDirs: [] }, { signal: ac.signal });
    await assert.rejects(collect(s));
    await assert.rejects(walkChanges(sb.root, new FileIndex(), { signal: ac.signal }));
  } finally {
    await sb.cleanup();
  }
});

test("the root directory itself is never an entry (BuildKit's RUN layers carry none either)", async () => {
  const sb = await makeSandbox();
  try {
    await writeFile(path.join(sb.root, "a"), "a");
    const changes = { changed: ["/", ".", "", "/a"], deleted: ["/"], opaqueDirs: ["/"] };
    const hs = await headersOf(await collect(changesTarStream(sb.root, changes)));
    assert.deepEqual(
      hs.map((h) => h.name),
      [".wh..wh..opq", "a"],
    );
  } finally {
    await sb.cleanup();
  }
});
