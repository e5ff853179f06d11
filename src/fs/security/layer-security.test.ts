import * as assert from "node:assert/strict";
import { lstat, mkdir, readFile, readlink, readdir, stat, symlink, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { hasCode } from "../../common/errors.js";
import { FileIndex } from "../file-index.js";
import { IgnoreList } from "../ignore-list.js";
import type { Sandbox, Spec } from "../test-helpers.js";
import { applyBuffer, assertCanaryIntact, buildTar, isRoot, listTree, makeSandbox } from "../test-helpers.js";
import { rawHeader, rawTar } from "./raw-tar.js";

/** Expected outcome: rejected with a code, or applied and then checked. */
type Outcome = { reject: string } | { check: (sb: Sandbox) => Promise<void> };

interface Case {
  name: string;
  /** Earlier layers (applied first; must succeed). */
  lower?: (sb: Sandbox) => Spec[];
  layer: (sb: Sandbox) => Spec[] | Buffer;
  expect: Outcome;
  needsRoot?: boolean;
}

const file = (name: string, body = "pwned"): Spec => ({ name, body });
const sym = (name: string, linkname: string): Spec => ({ name, type: "symlink", linkname });
const hard = (name: string, linkname: string): Spec => ({ name, type: "hardlink", linkname });
const dir = (name: string, mode = 0o755): Spec => ({ name, type: "dir", mode });
const unsafe: Outcome = { reject: "LAYER_UNSAFE" };
const read = (sb: Sandbox, p: string): Promise<string> => readFile(path.join(sb.root, p), "utf8");

const cases: Case[] = [
  { name: "../ traversal", layer: () => [file("../canary/secret")], expect: unsafe },
  { name: "nested ../ traversal", layer: () => [file("a/b/../../../canary/secret")], expect: unsafe },
  { name: "./../ traversal", layer: () => [file("./../canary/new")], expect: unsafe },
  { name: "absolute name with .. above /", layer: () => [file("/../canary/secret")], expect: unsafe },
  { name: "long PAX name with ../", layer: () => [file("../" + "x".repeat(150))], expect: unsafe },
  {
    name: "harmless inner .. is normalised",
    layer: () => [file("a/../b", "ok")],
    expect: { check: async (sb) => assert.deepEqual(await listTree(sb.root), ["b"]) },
  },
  {
    name: "absolute host path is re-rooted",
    layer: (sb) => [file(path.join(sb.canary, "secret"), "inside")],
    expect: { check: async (sb) => assert.equal(await read(sb, path.join(sb.canary, "secret")), "inside") },
  },
  {
    // In container terms `etc -> /etc` points at itself: a loop, rejected like the kernel's ELOOP.
    name: "symlink etc -> /etc then etc/passwd",
    layer: () => [sym("etc", "/etc"), file("etc/passwd", "root")],
    expect: unsafe,
  },
  {
    name: "symlink hostetc -> /etc then hostetc/passwd lands in the root's /etc",
    lower: () => [dir("etc")],
    layer: () => [sym("hostetc", "/etc"), file("hostetc/passwd", "root")],
    expect: {
      check: async (sb) => {
        assert.equal(await read(sb, "/etc/passwd"), "root");
        assert.deepEqual(await listTree(sb.root), ["etc/", "etc/passwd", "hostetc -> /etc"]);
      },
    },
  },
  {
    name: "symlink to absolute canary dir then write through it",
    layer: (sb) => [sym("c", sb.canary), file("c/secret", "inside")],
    expect: { check: async (sb) => assert.equal(await read(sb, path.join(sb.canary, "secret")), "inside") },
  },
  {
    name: "relative symlink climbing out then write through it",
    layer: () => [sym("up", "../../../.."), file("up/canary/secret", "inside")],
    expect: { check: async (sb) => assert.equal(await read(sb, "canary/secret"), "inside") },
  },
  {
    name: "symlink to .. chains",
    layer: () => [
      sym("x", ".."),
      sym("y", "x/../x/.."),
      dir("z"),
      sym("z/w", "../y/.."),
      file("z/w/canary/secret", "in"),
    ],
    expect: { check: async (sb) => assert.equal(await read(sb, "canary/secret"), "in") },
  },
  {
    name: "symlink from a lower layer then write through it",
    lower: () => [sym("out", "../canary")],
    layer: () => [file("out/secret", "in")],
    expect: { check: async (sb) => assert.equal(await read(sb, "canary/secret"), "in") },
  },
  {
    name: "dir replaced by a symlink then written into",
    layer: () => [dir("d"), file("d/f", "1"), sym("d", "../canary"), file("d/secret", "in")],
    expect: {
      check: async (sb) => {
        assert.equal(await readlink(path.join(sb.root, "d")), "../canary");
        assert.equal(await read(sb, "canary/secret"), "in");
      },
    },
  },
  {
    name: "file written over a symlink pointing outside replaces the link",
    layer: () => [sym("s", "../canary/secret"), file("s", "mine")],
    expect: {
      check: async (sb) => {
        assert.ok((await lstat(path.join(sb.root, "s"))).isFile());
        assert.equal(await read(sb, "s"), "mine");
      },
    },
  },
  { name: "hardlink to ../ outside", layer: () => [hard("h", "../canary/secret")], expect: unsafe },
  {
    name: "hardlink to absolute host path (missing in root)",
    layer: (sb) => [hard("h", path.join(sb.canary, "secret"))],
    expect: unsafe,
  },
  {
    name: "hardlink through a symlinked dir pointing outside",
    layer: (sb) => [sym("s", sb.canary), hard("h", "s/secret")],
    expect: unsafe,
  },
  {
    name: "hardlink to a symlink that points outside links the symlink itself",
    layer: () => [sym("s", "../canary/secret"), hard("h", "s")],
    expect: {
      check: async (sb) => {
        const h = await lstat(path.join(sb.root, "h"));
        assert.ok(h.isSymbolicLink());
        assert.equal(h.nlink, 2);
      },
    },
  },
  {
    name: "hardlink to an absolute in-root path is re-rooted",
    lower: () => [file("etc/passwd", "root")],
    layer: () => [hard("pw", "/etc/passwd")],
    expect: {
      check: async (sb) =>
        assert.equal((await stat(path.join(sb.root, "pw"))).ino, (await stat(path.join(sb.root, "etc/passwd"))).ino),
    },
  },
  { name: "hardlink to a directory", layer: () => [dir("d"), hard("h", "d")], expect: unsafe },
  { name: "whiteout named ..", layer: () => [file(".wh..."), file("x")], expect: unsafe },
  { name: "nested whiteout named ..", layer: () => [dir("a"), file("a/.wh..."), file("x")], expect: unsafe },
  { name: "whiteout of .", layer: () => [file("a/.wh..")], expect: unsafe },
  { name: "whiteout with escaping path", layer: () => [file("../.wh.canary")], expect: unsafe },
  { name: "whiteout of a whiteout name", layer: () => [file(".wh..wh.x")], expect: unsafe },
  {
    name: "whiteout through a symlink pointing outside deletes nothing outside",
    lower: () => [sym("l", "../canary")],
    layer: () => [file("l/.wh.secret"), file("l/.wh.sub")],
    expect: { check: async (sb) => assert.deepEqual(await listTree(sb.root), ["l -> ../canary"]) },
  },
  {
    name: "whiteout of a symlink to outside removes only the link",
    lower: (sb) => [sym("l", sb.canary)],
    layer: () => [file(".wh.l")],
    expect: { check: async (sb) => assert.deepEqual(await readdir(sb.root), []) },
  },
  {
    name: "opaque marker at the root clears the root only",
    lower: () => [file("old"), dir("d"), file("d/x"), sym("l", "../canary")],
    layer: () => [file(".wh..wh..opq"), file("new", "n")],
    expect: { check: async (sb) => assert.deepEqual(await listTree(sb.root), ["new"]) },
  },
  {
    name: "opaque marker below a symlink pointing outside",
    lower: (sb) => [sym("l", sb.canary)],
    layer: () => [file("l/.wh..wh..opq")],
    expect: { check: async (sb) => assert.deepEqual(await listTree(sb.root), [`l -> ${sb.canary}`]) },
  },
  { name: "opaque marker above the root", layer: () => [file("../.wh..wh..opq")], expect: unsafe },
  { name: "symlink loop", layer: () => [sym("a", "b"), sym("b", "a"), file("a/x")], expect: unsafe },
  { name: "self-referencing symlink", layer: () => [sym("s", "s/x"), file("s/y")], expect: unsafe },
  {
    name: "very long name (> 4096 bytes)",
    layer: () => [file("d/".repeat(2100) + "f")],
    expect: unsafe,
  },
  { name: "path component longer than NAME_MAX", layer: () => [file("a".repeat(300))], expect: unsafe },
  {
    name: "absurd header size",
    layer: () => rawTar([rawHeader({ name: "big", size: "77777777777" }), "tiny"], true),
    expect: { reject: "TAR_INVALID" },
  },
  {
    name: "bad header checksum",
    layer: () => rawTar([rawHeader({ name: "../canary/secret", checksum: "0000001\0" })]),
    expect: { reject: "TAR_INVALID" },
  },
  {
    name: "raw ustar traversal name (no PAX)",
    layer: () => rawTar([rawHeader({ name: "../canary/raw", size: "00000000003" }), "abc"]),
    expect: unsafe,
  },
  {
    name: "duplicate entries: last one wins",
    layer: () => [file("a", "1"), file("a", "2"), dir("b"), file("b", "file"), file("c", "x"), dir("c")],
    expect: {
      check: async (sb) => {
        assert.equal(await read(sb, "a"), "2");
        assert.equal(await read(sb, "b"), "file");
        assert.ok((await lstat(path.join(sb.root, "c"))).isDirectory());
      },
    },
  },
  {
    name: "setuid, setgid and sticky bits are kept",
    layer: () => [
      { name: "bin/su", body: "x", mode: 0o4755 },
      { name: "bin/wall", body: "x", mode: 0o2755 },
      { name: "tmp/", type: "dir", mode: 0o1777 },
    ],
    expect: {
      check: async (sb) => {
        assert.equal((await stat(path.join(sb.root, "bin/su"))).mode & 0o7777, 0o4755);
        assert.equal((await stat(path.join(sb.root, "bin/wall"))).mode & 0o7777, 0o2755);
        assert.equal((await stat(path.join(sb.root, "tmp"))).mode & 0o7777, 0o1777);
      },
    },
  },
  {
    name: "device nodes are created inside the root",
    needsRoot: true,
    layer: () => [
      { name: "dev/sda", type: "block", devmajor: 8, devminor: 0, mode: 0o660 },
      { name: "../canary/dev", type: "char", devmajor: 1, devminor: 3 },
    ],
    expect: unsafe,
  },
  {
    name: "device node via symlinked parent lands inside the root",
    needsRoot: true,
    layer: (sb) => [sym("d", sb.canary), { name: "d/mem", type: "char", devmajor: 1, devminor: 1, mode: 0o600 }],
    expect: {
      check: async (sb) => assert.ok((await lstat(path.join(sb.root, sb.canary, "mem"))).isCharacterDevice()),
    },
  },
  {
    name: "backslashes are literal characters",
    layer: () => [file("..\\canary\\secret", "lit")],
    expect: { check: async (sb) => assert.deepEqual(await listTree(sb.root), ["..\\canary\\secret"]) },
  },
];

for (const c of cases) {
  test(`security: ${c.name}`, async (t) => {
    if (c.needsRoot && !isRoot()) {
      t.skip("needs root (mknod)");
      return;
    }
    const sb = await makeSandbox();
    try {
      const index = new FileIndex();
      if (c.lower) await applyBuffer(sb.root, await buildTar(c.lower(sb)), { index });
      const layer = c.layer(sb);
      const tar = Buffer.isBuffer(layer) ? layer : await buildTar(layer);
      const run = applyBuffer(sb.root, tar, { index });
      if ("reject" in c.expect) {
        const code = c.expect.reject;
        await assert.rejects(run, (e: unknown) => {
          assert.ok(hasCode(e, code), `expected ${code}, got ${String(e)}`);
          return true;
        });
      } else {
        await run;
        await c.expect.check(sb);
      }
      await assertCanaryIntact(sb);
    } finally {
      await sb.cleanup();
    }
  });
}

test("security: ignored state dir is never written nor deleted by a layer", async () => {
  const sb = await makeSandbox();
  try {
    await mkdir(path.join(sb.root, "kaniko"));
    await writeFile(path.join(sb.root, "kaniko/executor"), "exe");
    await symlink("/kaniko", path.join(sb.root, "k"));
    const ignore = IgnoreList.create({ stateDir: "/kaniko" });
    const res = await applyBuffer(
      sb.root,
      await buildTar([
        file("kaniko/executor", "evil"),
        file("k/executor", "evil2"),
        file(".wh.kaniko"),
        file("kaniko/.wh..wh..opq"),
      ]),
      { ignore },
    );
    assert.equal(await read(sb, "kaniko/executor"), "exe");
    assert.ok(res.skipped.length >= 3);
    await assertCanaryIntact(sb);
  } finally {
    await sb.cleanup();
  }
});
