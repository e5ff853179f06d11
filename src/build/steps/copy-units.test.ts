import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { parseChmod } from "../chmod.js";
import { detectArchiveCompression, isArchive, isTarHeader } from "./add-archive.js";
import { downloadName, parseChecksum } from "./add-url.js";
import { componentsMatch } from "./copy-sources.js";
import { isGitSource } from "./add-git.js";

test("--chmod octal replaces the bits, symbolic forms match chmod(1)", () => {
  assert.equal(parseChmod("0644")(0o755, false), 0o644);
  assert.equal(parseChmod("0")(0o755, true), 0);
  assert.equal(parseChmod("go-w")(0o777, false), 0o755);
  assert.equal(parseChmod("u=rw,g=r,o=r")(0o777, false), 0o644);
  assert.equal(parseChmod("a+X")(0o644, false), 0o644);
  assert.equal(parseChmod("a+X")(0o744, false), 0o755);
  assert.equal(parseChmod("a+X")(0o700, true), 0o711);
  assert.equal(parseChmod("u+rw,g+r,o-x,o+w")(0o001, false), 0o642);
  assert.equal(parseChmod("g=u")(0o750, false), 0o770);
  assert.equal(parseChmod("u+s,+t")(0o755, false), 0o5755);
  assert.throws(() => parseChmod("64a"), /invalid chmod parameter: '64a'/);
  assert.throws(() => parseChmod("u+q"), /invalid chmod parameter/);
});

test("`**` spans any number of components, other components use filepath.Match", () => {
  assert.ok(componentsMatch(["**", "*.go"], ["a.go"]));
  assert.ok(componentsMatch(["**", "*.go"], ["x", "y", "a.go"]));
  assert.ok(componentsMatch(["a", "**"], ["a", "b", "c"]));
  assert.ok(!componentsMatch(["**", "*.go"], ["x", "a.txt"]));
  assert.ok(componentsMatch(["d?r", "[ab]"], ["dir", "b"]));
});

test("archive compression is detected by magic numbers and a tar by its header checksum", async () => {
  assert.equal(detectArchiveCompression(Buffer.from([0x1f, 0x8b, 8])), "gzip");
  assert.equal(detectArchiveCompression(Buffer.from("BZh91AY")), "bzip2");
  assert.equal(detectArchiveCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0])), "xz");
  assert.equal(detectArchiveCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), "zstd");
  assert.equal(detectArchiveCompression(Buffer.from("hello")), "none");
  assert.ok(!isTarHeader(Buffer.alloc(512)));
  const dir = await mkdtemp(path.join(os.tmpdir(), "kiln-archive-"));
  try {
    await writeFile(path.join(dir, "a.txt"), "a\n");
    execFileSync("tar", ["-cf", path.join(dir, "a.tar"), "-C", dir, "a.txt"]);
    execFileSync("gzip", ["-k", path.join(dir, "a.tar")]);
    execFileSync("gzip", ["-k", path.join(dir, "a.txt")]);
    await writeFile(path.join(dir, "empty"), "");
    assert.equal(await isArchive(path.join(dir, "a.tar")), "none");
    assert.equal(await isArchive(path.join(dir, "a.tar.gz")), "gzip");
    assert.equal(await isArchive(path.join(dir, "a.txt.gz")), undefined);
    assert.equal(await isArchive(path.join(dir, "a.txt")), undefined);
    assert.equal(await isArchive(path.join(dir, "empty")), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("ADD --checksum accepts sha256/384/512 and rejects the rest with BuildKit's words", () => {
  assert.deepEqual(parseChecksum(`sha256:${"A".repeat(64)}`), { algorithm: "sha256", hex: "a".repeat(64) });
  assert.throws(() => parseChecksum("md5:abc"), /unsupported digest algorithm/);
  assert.throws(() => parseChecksum("abc"), /invalid checksum digest format/);
  assert.throws(() => parseChecksum("sha256:abc"), /invalid checksum digest format/);
});

test("downloaded file names: the URL path's last element, else __unnamed__ (BuildKit's frontend)", () => {
  assert.equal(downloadName(new URL("http://h/a/b.tgz?x=1")), "b.tgz");
  assert.equal(downloadName(new URL("http://h/a/b/")), "b");
  assert.equal(downloadName(new URL("http://h/")), "__unnamed__");
  assert.equal(downloadName(new URL("http://h/x%20y")), "x y");
  assert.equal(downloadName(new URL("http://h/a/..")), "__unnamed__");
});

test("git sources are recognised like BuildKit", () => {
  assert.ok(isGitSource("git@github.com:o/r.git"));
  assert.ok(isGitSource("https://github.com/o/r.git#main"));
  assert.ok(isGitSource("git://h/r"));
  assert.ok(!isGitSource("https://h/file.tar.gz"));
});

test("archive extraction stays inside the root: links are resolved in it, `..` names are refused", async () => {
  const { createWriteStream } = await import("node:fs");
  const { lstat, readFile, mkdir } = await import("node:fs/promises");
  const { TarWriter, emptyHeader } = await import("../../image/index.js");
  const { extractArchive } = await import("./add-archive.js");
  const dir = await mkdtemp(path.join(os.tmpdir(), "kiln-extract-"));
  const outside = `kiln-outside-${path.basename(dir)}`;
  try {
    const root = path.join(dir, "root");
    await mkdir(root);
    const tarFile = path.join(dir, "t.tar");
    const w = new TarWriter(createWriteStream(tarFile));
    await w.add({ ...emptyHeader("esc", "symlink"), linkname: `/../../../../tmp/${outside}` });
    await w.add({ ...emptyHeader("esc/pwn", "file"), size: 3 }, Buffer.from("pw\n"));
    await w.add({ ...emptyHeader("d/f", "file"), size: 2, uid: 5, gid: 6, mode: 0o640 }, Buffer.from("f\n"));
    await w.add({ ...emptyHeader("d/h", "hardlink"), linkname: "d/f" });
    await w.finish();
    const { written } = await extractArchive(root, "/dest", tarFile, "t.tar", (o) => o);
    // The absolute link target is re-rooted: the file lands under <root>/tmp, never the host's /tmp.
    assert.equal(await readFile(path.join(root, "tmp", outside, "pwn"), "utf8"), "pw\n");
    await assert.rejects(lstat(path.join("/tmp", outside)));
    const f = await lstat(path.join(root, "dest/d/f"));
    assert.equal(`${f.uid}:${f.gid}:${(f.mode & 0o777).toString(8)}`, "5:6:640");
    assert.equal((await lstat(path.join(root, "dest/d/h"))).ino, f.ino);
    assert.ok(written.includes("/dest/d/f"));

    const evil = path.join(dir, "evil.tar");
    const w2 = new TarWriter(createWriteStream(evil));
    await w2.add({ ...emptyHeader("../../x", "file"), size: 1 }, Buffer.from("x"));
    await w2.finish();
    await assert.rejects(
      extractArchive(root, "/dest", evil, "evil.tar", (o) => o),
      /climbs out/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("archive extraction creates devices and FIFOs as root and restores xattrs, like Docker's untar", async (t) => {
  const { createWriteStream } = await import("node:fs");
  const { lstat, mkdir } = await import("node:fs/promises");
  const { TarWriter, emptyHeader } = await import("../../image/index.js");
  const { extractArchive } = await import("./add-archive.js");
  if (process.getuid?.() !== 0) return t.skip("devices need root");
  const dir = await mkdtemp(path.join(os.tmpdir(), "kiln-extract-"));
  try {
    const root = path.join(dir, "root");
    await mkdir(root);
    const tarFile = path.join(dir, "t.tar");
    const w = new TarWriter(createWriteStream(tarFile));
    // cap_net_raw+ep as setcap writes it (VFS_CAP_REVISION_2).
    const cap = Buffer.from("0100000200200000000000000000000000000000", "hex");
    await w.add({ ...emptyHeader("dev/null", "char"), devmajor: 1, devminor: 3, mode: 0o666 });
    await w.add({ ...emptyHeader("dev/loop0", "block"), devmajor: 7, devminor: 0, mode: 0o660, gid: 6 });
    await w.add({ ...emptyHeader("run/initctl", "fifo"), mode: 0o600 });
    await w.add(
      { ...emptyHeader("bin/ping", "file"), size: 2, mode: 0o755, xattrs: new Map([["security.capability", cap]]) },
      Buffer.from("p\n"),
    );
    await w.add({
      ...emptyHeader("etc/", "dir"),
      mode: 0o755,
      xattrs: new Map([
        ["user.origin", Buffer.from("rootfs")],
        ["security.selinux", Buffer.from("system_u:object_r:etc_t:s0")],
      ]),
    });
    await w.finish();
    const { written, skipped } = await extractArchive(root, "/", tarFile, "rootfs.tar", (o) => o);
    const nul = await lstat(path.join(root, "dev/null"));
    assert.ok(nul.isCharacterDevice());
    assert.equal(`${nul.rdev >> 8}:${nul.rdev & 0xff}:${(nul.mode & 0o777).toString(8)}`, "1:3:666");
    const loop = await lstat(path.join(root, "dev/loop0"));
    assert.ok(loop.isBlockDevice());
    assert.equal(`${loop.gid}:${(loop.mode & 0o777).toString(8)}`, "6:660");
    assert.ok((await lstat(path.join(root, "run/initctl"))).isFIFO());
    for (const p of ["/dev/null", "/dev/loop0", "/run/initctl", "/bin/ping"]) assert.ok(written.includes(p), p);
    const attr = (name: string, file: string): string =>
      execFileSync("getfattr", ["--absolute-names", "--only-values", "-n", name, path.join(root, file)], {
        encoding: "latin1",
      });
    assert.equal(attr("security.capability", "bin/ping"), cap.toString("latin1"));
    assert.equal(attr("user.origin", "etc"), "rootfs");
    // security.selinux is not restored: named, not silently dropped.
    assert.deepEqual(
      skipped.map((s) => `${s.path} ${s.reason}`),
      ["/etc xattr security.selinux not restored (only security.capability, user.*, trusted.*)"],
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("an archive node that cannot be created still replaces what was there: the removed path is reported written", async () => {
  const { createWriteStream } = await import("node:fs");
  const { lstat, mkdir, writeFile } = await import("node:fs/promises");
  const { TarWriter, emptyHeader } = await import("../../image/index.js");
  const { extractArchive } = await import("./add-archive.js");
  const dir = await mkdtemp(path.join(os.tmpdir(), "kiln-extract-node-"));
  try {
    const root = path.join(dir, "root");
    await mkdir(path.join(root, "dest"), { recursive: true });
    await writeFile(path.join(root, "dest", "node"), "the image's file\n");
    const tarFile = path.join(dir, "t.tar");
    const w = new TarWriter(createWriteStream(tarFile));
    // A device number mknod refuses everywhere (EINVAL, also as root): the node is never created.
    await w.add({ ...emptyHeader("node", "char"), devmajor: 4294967295, devminor: 1 });
    await w.finish();
    const { written, skipped } = await extractArchive(root, "/dest", tarFile, "t.tar", (o) => o);
    assert.deepEqual(
      skipped.map((s) => s.path),
      ["/dest/node"],
    );
    await assert.rejects(lstat(path.join(root, "dest", "node")), "the image's file was removed");
    assert.ok(written.includes("/dest/node"), "so the snapshot records its deletion");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("probing a large compressed archive leaves no file open", async () => {
  const { readdirSync } = await import("node:fs");
  const { gzipSync } = await import("node:zlib");
  const { randomBytes } = await import("node:crypto");
  const dir = await mkdtemp(path.join(os.tmpdir(), "kiln-probe-fd-"));
  try {
    // Random bytes do not compress: the file is far larger than one read, so the probe stops mid-file.
    const file = path.join(dir, "big.tar.gz");
    await writeFile(file, gzipSync(Buffer.concat([Buffer.alloc(512), randomBytes(1024 * 1024)])));
    const fds = (): number => readdirSync("/proc/self/fd").length;
    const before = fds();
    for (let i = 0; i < 20; i++) await isArchive(file);
    await new Promise((r) => setImmediate(r));
    assert.ok(fds() - before < 5, `${fds() - before} descriptors left open by 20 probes`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
