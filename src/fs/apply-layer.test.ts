import * as assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { lstat, mkdir, open, readFile, readdir, readlink, stat, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { FileIndex } from "./file-index.js";
import { IgnoreList } from "./ignore-list.js";
import { sparse10Entry } from "../image/tar/testing.js";
import {
  applyBuffer,
  applySpecs,
  assertCanaryIntact,
  assertCode,
  isRoot,
  listTree,
  makeSandbox,
  type Spec,
} from "./test-helpers.js";
import { findTool } from "./exec-tool.js";

test("applies files, dirs, symlinks with owners, modes and times; dir mtimes survive children", async (t) => {
  const sb = await makeSandbox();
  try {
    const index = new FileIndex();
    const res = await applySpecs(
      sb.root,
      [
        { name: "./etc/", type: "dir", mode: 0o750, uid: 7, gid: 8, mtime: 1111 },
        { name: "./etc/passwd", body: "root:x:0:0::/root:/bin/sh\n", mode: 0o640, uid: 7, gid: 8, mtime: 2222.5 },
        { name: "/usr/bin/tool", body: "#!", mode: 0o4755, mtime: 3333 },
        { name: "bin", type: "symlink", linkname: "usr/bin", mtime: 4444 },
      ],
      { index },
    );
    assert.equal(res.entries, 4);
    assert.equal(await readFile(path.join(sb.root, "etc/passwd"), "utf8"), "root:x:0:0::/root:/bin/sh\n");
    const etc = await stat(path.join(sb.root, "etc"));
    assert.equal(etc.mode & 0o7777, 0o750);
    assert.equal(etc.mtimeMs, 1111_000, "dir mtime restored after its children were written");
    const pw = await stat(path.join(sb.root, "etc/passwd"));
    assert.equal(pw.mtimeMs, 2222_500);
    assert.equal(pw.mode & 0o7777, 0o640);
    if (isRoot()) {
      assert.equal(pw.uid, 7);
      assert.equal(etc.gid, 8);
    } else t.diagnostic("not root: ownership not checked");
    assert.equal((await stat(path.join(sb.root, "usr/bin/tool"))).mode & 0o7777, 0o4755, "setuid kept");
    assert.equal((await stat(path.join(sb.root, "usr"))).mode & 0o7777, 0o755, "implicit parents are 0755");
    assert.equal(await readlink(path.join(sb.root, "bin")), "usr/bin");
    assert.equal((await lstat(path.join(sb.root, "bin"))).mtimeMs, 4444_000);
    // The index mirrors the tree.
    assert.deepEqual([...index.paths()].sort(), ["/bin", "/etc", "/etc/passwd", "/usr", "/usr/bin", "/usr/bin/tool"]);
    assert.equal(index.get("/etc/passwd")?.mode, 0o640);
    assert.equal(index.get("/etc")?.mtimeNs, 1111_000_000_000n);
    assert.equal(index.get("/bin")?.linkTarget, "usr/bin");
  } finally {
    await sb.cleanup();
  }
});

test("whiteouts delete lower paths; same-layer entries survive their own whiteouts", async () => {
  const sb = await makeSandbox();
  try {
    const index = new FileIndex();
    await applySpecs(
      sb.root,
      [
        { name: "a/", type: "dir" },
        { name: "a/x", body: "x" },
        { name: "a/y", body: "y" },
        { name: "b/", type: "dir" },
        { name: "b/z", body: "z" },
      ],
      { index },
    );
    const res = await applySpecs(
      sb.root,
      [
        { name: "a/.wh.x" },
        { name: "a/new", body: "n" },
        { name: "a/.wh.new" },
        { name: ".wh.b" },
        { name: "a/.wh.never-existed" },
      ],
      { index },
    );
    assert.equal(res.whiteouts, 4);
    assert.deepEqual(await listTree(sb.root), ["a/", "a/new", "a/y"]);
    assert.equal(index.has("/a/x"), false);
    assert.equal(index.has("/b/z"), false);
    assert.equal(index.has("/b"), false);
    assert.equal(index.has("/a/new"), true);
  } finally {
    await sb.cleanup();
  }
});

test("opaque whiteout empties lower content but keeps this layer's entries in any order", async () => {
  const sb = await makeSandbox();
  try {
    const index = new FileIndex();
    await applySpecs(
      sb.root,
      [
        { name: "d/", type: "dir" },
        { name: "d/old", body: "o" },
        { name: "d/sub/", type: "dir" },
        { name: "d/sub/deep", body: "deep" },
        { name: "keep", body: "k" },
      ],
      { index },
    );
    await applySpecs(
      sb.root,
      [
        { name: "d/sub/fresh", body: "f" }, // before the marker
        { name: "d/.wh..wh..opq" },
        { name: "d/after", body: "a" }, // after the marker
      ],
      { index },
    );
    assert.deepEqual(await listTree(sb.root), ["d/", "d/after", "d/sub/", "d/sub/fresh", "keep"]);
    assert.equal(index.has("/d/old"), false);
    assert.equal(index.has("/d/sub/deep"), false);
    assert.equal(index.has("/d/after"), true);
  } finally {
    await sb.cleanup();
  }
});

test("whiteouts and opaque markers spare ignored paths and their ancestors", async () => {
  const sb = await makeSandbox();
  try {
    await mkdir(path.join(sb.root, "var/run/secrets"), { recursive: true });
    await writeFile(path.join(sb.root, "var/run/secrets/token"), "t");
    await mkdir(path.join(sb.root, "var/lib"), { recursive: true });
    await writeFile(path.join(sb.root, "var/lib/x"), "x");
    const ignore = IgnoreList.create({ ignoreVarRun: true });
    const res = await applySpecs(
      sb.root,
      [{ name: ".wh.var" }, { name: ".wh..wh..opq" }, { name: "var/run/evil", body: "e" }],
      {
        ignore,
      },
    );
    assert.deepEqual(await listTree(sb.root), ["var/", "var/run/", "var/run/secrets/", "var/run/secrets/token"]);
    assert.ok(res.skipped.some((s) => s.path === "/var/run/evil" && /ignored/.test(s.reason)));
    assert.ok(res.skipped.some((s) => s.path === "/var" && /whiteout/.test(s.reason)));
  } finally {
    await sb.cleanup();
  }
});

test("file <-> dir <-> symlink replacement; dir over dir only updates metadata", async () => {
  const sb = await makeSandbox();
  try {
    const index = new FileIndex();
    await applySpecs(
      sb.root,
      [
        { name: "f", body: "file" },
        { name: "d/", type: "dir", mode: 0o700 },
        { name: "d/child", body: "c" },
        { name: "s", type: "symlink", linkname: "d" },
        { name: "keepdir/", type: "dir" },
        { name: "keepdir/kid", body: "kid" },
      ],
      { index },
    );
    await applySpecs(
      sb.root,
      [
        { name: "f/", type: "dir" },
        { name: "f/inside", body: "i" },
        { name: "d", body: "now a file" },
        { name: "s/", type: "dir" },
        { name: "keepdir/", type: "dir", mode: 0o711 },
      ],
      { index },
    );
    assert.deepEqual(await listTree(sb.root), ["d", "f/", "f/inside", "keepdir/", "keepdir/kid", "s/"]);
    assert.equal(await readFile(path.join(sb.root, "d"), "utf8"), "now a file");
    assert.equal((await stat(path.join(sb.root, "keepdir"))).mode & 0o7777, 0o711);
    assert.equal(index.has("/d/child"), false);
    assert.equal(index.get("/d")?.type, "file");
    assert.equal(index.get("/s")?.type, "dir");
    assert.equal(index.get("/f")?.type, "dir");
  } finally {
    await sb.cleanup();
  }
});

test("hardlinks: within a layer and to an earlier layer's file", async () => {
  const sb = await makeSandbox();
  try {
    const index = new FileIndex();
    await applySpecs(sb.root, [{ name: "usr/bin/python3.11", body: "py", mode: 0o755 }], { index });
    await applySpecs(
      sb.root,
      [
        { name: "usr/bin/python3", type: "hardlink", linkname: "usr/bin/python3.11" },
        { name: "a", body: "A" },
        { name: "b", type: "hardlink", linkname: "./a" },
      ],
      { index },
    );
    const p = await stat(path.join(sb.root, "usr/bin/python3"));
    const q = await stat(path.join(sb.root, "usr/bin/python3.11"));
    assert.equal(p.ino, q.ino);
    assert.equal(q.nlink, 2);
    assert.equal((await stat(path.join(sb.root, "b"))).ino, (await stat(path.join(sb.root, "a"))).ino);
    assert.equal(index.get("/usr/bin/python3.11")?.nlink, 2, "hardlink target refreshed in the index");
  } finally {
    await sb.cleanup();
  }
});

test("device nodes and fifos are created as root, otherwise reported as skipped", async (t) => {
  const sb = await makeSandbox();
  try {
    const res = await applySpecs(sb.root, [
      { name: "dev/null", type: "char", devmajor: 1, devminor: 3, mode: 0o666 },
      { name: "dev/loop0", type: "block", devmajor: 7, devminor: 0, mode: 0o660 },
      { name: "run/fifo", type: "fifo", mode: 0o600 },
    ]);
    const fifo = await lstat(path.join(sb.root, "run/fifo"));
    assert.ok(fifo.isFIFO());
    if (!isRoot()) {
      t.diagnostic("not root: device creation skipped");
      assert.equal(res.skipped.length, 2);
      return;
    }
    const n = await lstat(path.join(sb.root, "dev/null"));
    assert.ok(n.isCharacterDevice());
    assert.equal(n.rdev, (1 << 8) | 3);
    assert.equal(n.mode & 0o7777, 0o666);
    assert.ok((await lstat(path.join(sb.root, "dev/loop0"))).isBlockDevice());
    assert.deepEqual(res.skipped, []);
  } finally {
    await sb.cleanup();
  }
});

test("xattrs: security.capability and user.* restored via setfattr, others reported", async (t) => {
  if ((await findTool("setfattr")) === undefined || (await findTool("getfattr")) === undefined) {
    t.skip("setfattr/getfattr (Debian package attr) not installed");
    return;
  }
  const sb = await makeSandbox();
  try {
    // v2 capability blob: cap_net_bind_service (bit 10) permitted+effective.
    const cap = Buffer.from("0100000200040000000000000000000000000000", "hex");
    const res = await applySpecs(sb.root, [
      {
        name: "bin/ping",
        body: "elf",
        mode: 0o755,
        xattrs: new Map([
          ["security.capability", cap],
          ["user.note", Buffer.from("hi there")],
          ["security.selinux", Buffer.from("ctx")],
        ]),
      },
    ]);
    assert.ok(res.skipped.some((s) => s.reason.includes("security.selinux")));
    const { readCapabilities } = await import("./xattr.js");
    const caps = await readCapabilities([path.join(sb.root, "bin/ping")]);
    assert.deepEqual(caps.get(path.join(sb.root, "bin/ping")), cap);
    assert.equal((await stat(path.join(sb.root, "bin/ping"))).mode & 0o7777, 0o755);
  } finally {
    await sb.cleanup();
  }
});

test("abort signal stops extraction", async () => {
  const sb = await makeSandbox();
  try {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(applySpecs(sb.root, [{ name: "a", body: "a" }], { signal: ac.signal }));
    assert.deepEqual(await readdir(sb.root), []);
  } finally {
    await sb.cleanup();
  }
});

for (const [how, slowCreateMs] of [
  ["inline", undefined],
  ["thread pool", 0],
] as const) {
  test(`${how} creation keeps tar order semantics: duplicates, hardlinks, links then paths through them, file then dir`, async () => {
    const sb = await makeSandbox();
    try {
      const index = new FileIndex();
      const many = Array.from({ length: 300 }, (_, i) => ({ name: `bulk/f${i}`, body: `n${i}` }));
      const r = await applySpecs(
        sb.root,
        [
          { name: "bulk/", type: "dir" },
          ...many,
          { name: "dup", body: "first" },
          { name: "dup", body: "second" },
          { name: "hl-target", body: "shared" },
          { name: "hl", type: "hardlink", linkname: "hl-target" },
          { name: "real/", type: "dir" },
          { name: "via", type: "symlink", linkname: "real" },
          { name: "via/inside", body: "through the link" },
          { name: "was-file", body: "f" },
          { name: "was-file/", type: "dir" },
          { name: "was-file/child", body: "c" },
          { name: "big", body: "z".repeat(5 * 1024 * 1024) },
        ],
        { index, ...(slowCreateMs !== undefined ? { slowCreateMs } : {}) },
      );
      for (let i = 0; i < 300; i += 37) assert.equal(await readFile(path.join(sb.root, `bulk/f${i}`), "utf8"), `n${i}`);
      assert.equal((await readdir(path.join(sb.root, "bulk"))).length, 300);
      assert.equal(await readFile(path.join(sb.root, "dup"), "utf8"), "second");
      const [a, b] = [await stat(path.join(sb.root, "hl-target")), await stat(path.join(sb.root, "hl"))];
      assert.equal(a.ino, b.ino);
      assert.equal(await readFile(path.join(sb.root, "real/inside"), "utf8"), "through the link");
      assert.ok((await lstat(path.join(sb.root, "via"))).isSymbolicLink());
      assert.equal(await readFile(path.join(sb.root, "was-file/child"), "utf8"), "c");
      assert.equal((await stat(path.join(sb.root, "big"))).size, 5 * 1024 * 1024);
      assert.equal(index.get("/real/inside")?.size, "through the link".length);
      assert.equal(index.get("/dup")?.size, "second".length);
      assert.equal(index.size, 300 + 10);
      // The pool variant really went through the pool (the inline one may too, on a slow disk).
      if (slowCreateMs === 0) assert.ok(r.pooledCreations > 100, `${r.pooledCreations} creations through the pool`);
    } finally {
      await sb.cleanup();
    }
  });
}

test("a directory entry after its own children (created as their parents) keeps them", async () => {
  const sb = await makeSandbox();
  try {
    const index = new FileIndex();
    await applySpecs(
      sb.root,
      [
        { name: "a/b/c", body: "child first" },
        { name: "a/b/", type: "dir", mode: 0o750 },
        { name: "a/", type: "dir", mode: 0o711 },
      ],
      { index },
    );
    assert.equal(await readFile(path.join(sb.root, "a/b/c"), "utf8"), "child first");
    assert.equal((await stat(path.join(sb.root, "a/b"))).mode & 0o777, 0o750);
    assert.equal((await stat(path.join(sb.root, "a"))).mode & 0o777, 0o711);
  } finally {
    await sb.cleanup();
  }
});

for (const [how, slowCreateMs] of [
  ["an inline", undefined],
  ["a thread-pool", 0],
] as const) {
  test(`${how} creation that fails fails the layer with the entry's name`, async () => {
    const sb = await makeSandbox();
    try {
      const long = "x".repeat(300); // one component longer than NAME_MAX
      await assert.rejects(
        applySpecs(
          sb.root,
          [
            { name: "d/", type: "dir" },
            { name: "d/first", body: "f" }, // measured inline; with slowCreateMs 0 the next ones go to the pool
            { name: `d/${long}`, body: "b" },
            { name: "d/after", body: "a" },
          ],
          slowCreateMs !== undefined ? { slowCreateMs } : {},
        ),
        (e: Error & { code?: string }) => e.code === "LAYER_UNSAFE" && e.message.includes(long.slice(0, 50)),
      );
    } finally {
      await sb.cleanup();
    }
  });
}

test(
  "overlayWhiteouts: whiteouts become 0/0 devices, opaque markers xattrs; nothing escapes or is deleted",
  { skip: !isRoot() },
  async () => {
    const sb = await makeSandbox();
    try {
      const index = new FileIndex();
      const res = await applySpecs(
        sb.root,
        [
          { name: "a/", type: "dir", mode: 0o711 },
          { name: "a/.wh.x" },
          { name: "a/kept", body: "k" },
          { name: "a/.wh.kept" }, // same layer: not hidden
          { name: "d/.wh..wh..opq" }, // d only implied by the marker
          { name: "d/new", body: "n" },
          { name: "w/.wh.gone" },
          { name: "w", type: "symlink", linkname: "/etc" }, // a later entry turns the parent into a symlink
          { name: "re/.wh.sub" },
          { name: "re/sub/", type: "dir" }, // whiteout, then refilled in the same layer: opaque
          { name: "esc", type: "symlink", linkname: "../../canary" },
          { name: "esc/.wh.secret" }, // resolved inside the root, never in the canary
          { name: "t/", type: "dir", xattrs: new Map([["trusted.overlay.opaque", Buffer.from("y")]]) },
        ],
        { index, overlayWhiteouts: true },
      );
      assert.ok(res.overlay);
      assert.deepEqual(res.overlay.whiteouts, ["/a/x", "/canary/secret"]);
      assert.deepEqual(res.overlay.opaqueDirs, ["/d", "/re/sub"]);
      assert.deepEqual(res.overlay.implicitDirs, ["/canary", "/d", "/re"]);
      const wh = await lstat(path.join(sb.root, "a", "x"));
      assert.ok(wh.isCharacterDevice() && wh.rdev === 0);
      assert.equal(await readFile(path.join(sb.root, "a", "kept"), "utf8"), "k");
      assert.equal(await readlink(path.join(sb.root, "w")), "/etc", "the symlink is not replaced by a directory");
      assert.equal((await stat(path.join(sb.root, "a"))).mode & 0o7777, 0o711);
      assert.ok(res.skipped.some((s) => s.path === "/t" && s.reason.includes("reserved for overlayfs")));
      assert.equal(index.has("/a/x"), false, "whiteout nodes are not indexed");
      await assertCanaryIntact(sb);
    } finally {
      await sb.cleanup();
    }
  },
);

test("a `./` root directory entry is ignored silently (containerd parity); the root keeps its metadata", async () => {
  const sb = await makeSandbox();
  try {
    const before = await stat(sb.root);
    const res = await applySpecs(sb.root, [
      { name: "./", type: "dir", mode: 0o700, uid: 5, gid: 6, mtime: 1 },
      { name: "./a", body: "a" },
    ]);
    assert.deepEqual(res.skipped, []);
    const after = await stat(sb.root);
    assert.equal(after.mode, before.mode);
    assert.equal(`${after.uid}:${after.gid}`, `${before.uid}:${before.gid}`);
    assert.equal(await readFile(path.join(sb.root, "a"), "utf8"), "a");
    // Not a directory: still reported.
    const odd = await applySpecs(sb.root, [{ name: "./", body: "x" }]);
    assert.equal(odd.skipped.length, 1);
  } finally {
    await sb.cleanup();
  }
});

test("skeleton mode: directories and symlinks as a full extraction makes them, other entries only recorded", async () => {
  const full = await makeSandbox();
  const skel = await makeSandbox();
  try {
    const lower = [
      { name: "etc/", type: "dir" as const, mode: 0o750, uid: 7, gid: 8, mtime: 1111 },
      { name: "etc/passwd", body: "root:x:0:0::/root:/bin/sh\n", mode: 0o640, mtime: 2222 },
      { name: "usr/bin/tool", body: "#!", mode: 0o755, mtime: 3333 },
      { name: "usr/bin/alias", type: "hardlink" as const, linkname: "usr/bin/tool" },
      { name: "bin", type: "symlink" as const, linkname: "usr/bin", mtime: 4444 },
      { name: "var/gone/", type: "dir" as const },
      { name: "var/pipe", type: "fifo" as const },
    ];
    // The upper layer replaces a directory by a file, deletes one and adds one inside etc/.
    const upper = [
      { name: "var/gone", body: "now a file" },
      { name: "etc/.wh.passwd", body: "" },
      { name: "etc/app/", type: "dir" as const, mode: 0o700, mtime: 5555 },
    ];
    const fullIndex = new FileIndex();
    await applySpecs(full.root, lower, { index: fullIndex });
    await applySpecs(full.root, upper, { index: fullIndex });
    const files = new Set<string>();
    const index = new FileIndex();
    const r1 = await applySpecs(skel.root, lower, { index, skeletonOf: files });
    await applySpecs(skel.root, upper, { index, skeletonOf: files });
    assert.equal(r1.entries, lower.length);
    // Directories and symlinks: the same tree, the same metadata (times included) as the full extraction.
    const kept = [...fullIndex.paths()].filter((p) => {
      const e = fullIndex.get(p);
      return e?.type === "dir" || e?.type === "symlink";
    });
    assert.deepEqual([...index.paths()].sort(), kept.sort());
    // Times from the tar are restored alike; a directory a later layer changed implicitly (/etc here) has the
    // time of that change in both, which differs by the milliseconds between the two extractions.
    let timed = 0;
    for (const p of kept) {
      const a = await lstat(path.join(full.root, p));
      const b = await lstat(path.join(skel.root, p));
      assert.deepEqual([b.mode, b.uid, b.gid], [a.mode, a.uid, a.gid], p);
      if (a.mtimeMs % 1000 === 0 && p !== "/etc") {
        assert.equal(b.mtimeMs, a.mtimeMs, p);
        timed++;
      }
    }
    assert.ok(timed >= 2, "the tar's times were compared (/bin, /etc/app)");
    assert.equal(await readlink(path.join(skel.root, "bin")), "usr/bin");
    // Nothing else was created; every such entry was recorded (the replaced directory is gone).
    assert.deepEqual(await listTree(skel.root), ["bin -> usr/bin", "etc/", "etc/app/", "usr/", "usr/bin/", "var/"]);
    assert.deepEqual(
      [...files].sort(),
      ["/etc/passwd", "/usr/bin/alias", "/usr/bin/tool", "/var/gone", "/var/pipe"],
      "recorded conservatively: /etc/passwd stays although the upper layer deleted it",
    );
  } finally {
    await full.cleanup();
    await skel.cleanup();
  }
});

test("xattr values over the Linux limit (64 KiB) are skipped, not kept for the whole layer", async (t) => {
  const sb = await makeSandbox();
  try {
    // 40 files with a 1 MiB attribute each (a hostile layer had 300 and more: GiBs held, then sent at once).
    const big = Buffer.alloc(1000 * 1024, 0x41); // just within the reader's 1 MiB PAX header limit
    const specs: Spec[] = Array.from({ length: 40 }, (_, i) => ({
      name: `f${i}`,
      body: "x",
      xattrs: new Map([["user.big", big]]),
    }));
    specs.push({ name: "small", body: "s", xattrs: new Map([["user.note", Buffer.from("kept")]]) });
    const res = await applySpecs(sb.root, specs);
    const oversized = res.skipped.filter((s) => /user\.big.*Linux limit of 65536/.test(s.reason));
    assert.deepEqual(
      oversized.map((s) => s.path).sort(),
      specs
        .slice(0, 40)
        .map((s) => `/${s.name}`)
        .sort(),
    );
    assert.ok(
      res.skipped.every((s) => s.reason.length < 2000),
      "no skipped entry carries a huge reason",
    );
    if ((await findTool("getfattr")) === undefined) return t.skip("getfattr not installed");
    if (res.skipped.some((s) => s.path === "/small")) return t.skip("this filesystem refuses user xattrs");
    const { readXattr } = await import("./xattr.js");
    const note = await readXattr([path.join(sb.root, "small")], "user.note");
    assert.equal(note.get(path.join(sb.root, "small"))?.toString(), "kept");
  } finally {
    await sb.cleanup();
  }
});

test("a sparse entry is written with holes; one claiming a petabyte is TAR_INVALID", { timeout: 60_000 }, async () => {
  const sb = await makeSandbox();
  try {
    // 256 MiB (streamed, not buffered) holding 4 bytes at the very end.
    const size = 256 * 1024 * 1024;
    const layer = Buffer.concat([sparse10Entry("holes", size, size - 4, Buffer.from("TAIL")), Buffer.alloc(1024)]);
    const res = await applyBuffer(sb.root, layer);
    assert.deepEqual(res.skipped, []);
    const file = path.join(sb.root, "holes");
    const st = await stat(file);
    assert.equal(st.size, size);
    assert.ok(st.blocks * 512 < 1024 * 1024, `${st.blocks} blocks allocated: the holes were written as zeros`);
    const fh = await open(file, "r");
    try {
      const tail = Buffer.alloc(8);
      await fh.read(tail, 0, 8, size - 8);
      assert.deepEqual(tail, Buffer.from("\0\0\0\0TAIL", "latin1"));
    } finally {
      await fh.close();
    }

    const bomb = Buffer.concat([sparse10Entry("big", 2 ** 50, 0, Buffer.alloc(0)), Buffer.alloc(1024)]);
    await assertCode(applyBuffer(sb.root, bomb), "TAR_INVALID");
    assert.ok(!existsSync(path.join(sb.root, "big")), "nothing written for the refused entry");
  } finally {
    await sb.cleanup();
  }
});
