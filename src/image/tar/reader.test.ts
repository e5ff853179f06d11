import * as assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  createReadStream,
  readFileSync,
  symlinkSync,
  writeFileSync,
  mkdirSync,
  openSync,
  writeSync,
  closeSync,
} from "node:fs";
import * as path from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import { hasCode } from "../../common/errors.js";
import { decompressAuto } from "../compress/compression.js";
import { encodePax } from "./pax.js";
import { paxHeader, rawHeader, readAll, run, sparse10Entry, tempDir, writeToBuffer } from "./testing.js";
import { emptyHeader, readTar } from "./index.js";

const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

/** Creates a 3 MiB sparse file with data at 0, 1.5 MB and the very end, returns its bytes. */
function makeSparse(file: string): Buffer {
  const fd = openSync(file, "w");
  writeSync(fd, Buffer.from("HEAD"), 0, 4, 0);
  writeSync(fd, Buffer.alloc(5000, 0x41), 0, 5000, 1_500_000);
  writeSync(fd, Buffer.from("TAIL"), 0, 4, 3 * 1024 * 1024 - 4);
  closeSync(fd);
  return readFileSync(file);
}

test("reads GNU tar sparse archives in every format, bodies expanded with zero holes", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const src = makeSparse(path.join(dir, "sparse.bin"));
    const variants: [string, string[]][] = [
      ["gnu", ["--format=gnu"]],
      ["oldgnu", ["--format=oldgnu"]],
      ["pax-0.0", ["--format=posix", "--sparse-version=0.0"]],
      ["pax-0.1", ["--format=posix", "--sparse-version=0.1"]],
      ["pax-1.0", ["--format=posix", "--sparse-version=1.0"]],
    ];
    for (const [label, args] of variants) {
      const tarFile = path.join(dir, `${label}.tar`);
      run("tar", ["--sparse", ...args, "-cf", tarFile, "sparse.bin"], dir);
      assert.ok(readFileSync(tarFile).length < 100_000, `${label} archive is actually sparse`);
      const entries = await readAll(createReadStream(tarFile));
      assert.equal(entries.length, 1, label);
      const e = entries[0];
      if (!e) throw new Error("no entry");
      assert.equal(e.header.name, "sparse.bin", label);
      assert.equal(e.header.type, "file", label);
      assert.equal(e.header.size, src.length, label);
      assert.equal(sha(e.body), sha(src), label);
      assert.equal(e.header.pax.size, 0, `${label}: GNU.sparse records consumed`);
    }
  } finally {
    cleanup();
  }
});

test("reads bsdtar sparse archives", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const src = makeSparse(path.join(dir, "sparse.bin"));
    writeFileSync(path.join(dir, "plain.txt"), "plain");
    for (const fmt of ["pax", "gnutar", "ustar"]) {
      const tarFile = path.join(dir, `${fmt}.tar`);
      run("bsdtar", ["--format", fmt, "-cf", tarFile, "sparse.bin", "plain.txt"], dir);
      const entries = await readAll(readFileSync(tarFile));
      assert.deepEqual(
        entries.map((e) => e.header.name),
        ["sparse.bin", "plain.txt"],
        fmt,
      );
      assert.equal(sha(entries[0]?.body ?? Buffer.alloc(0)), sha(src), fmt);
      assert.equal(entries[1]?.body.toString(), "plain", fmt);
    }
  } finally {
    cleanup();
  }
});

test("reads xattrs (binary, setcap) from GNU tar --xattrs and bsdtar archives", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = path.join(dir, "ping");
    writeFileSync(f, "x");
    run("setcap", ["cap_dac_override,cap_fowner+ep", f]);
    run("setfattr", ["-n", "user.bin", "-v", "0x000a0aff00", f]);
    run("setfattr", ["-n", "user.text", "-v", "a=b\nc", f]);
    const cap = run("getfattr", ["-e", "hex", "-n", "security.capability", "ping"], dir);
    const capHex = /=0x([0-9a-f]+)/.exec(cap)?.[1];
    assert.ok(capHex?.includes("0a"), "capability value contains 0x0A");
    const gnuTar = path.join(dir, "gnu.tar");
    run("tar", ["--xattrs", "--xattrs-include=*", "--format=posix", "-cf", gnuTar, "ping"], dir);
    const bsdTar = path.join(dir, "bsd.tar");
    run("bsdtar", ["--xattrs", "--format", "pax", "-cf", bsdTar, "ping"], dir);
    for (const file of [gnuTar, bsdTar]) {
      const [e] = await readAll(readFileSync(file));
      if (!e) throw new Error("no entry");
      assert.equal(e.header.xattrs.get("security.capability")?.toString("hex"), capHex, file);
      assert.equal(e.header.xattrs.get("user.bin")?.toString("hex"), "000a0aff00", file);
      assert.equal(e.header.xattrs.get("user.text")?.toString(), "a=b\nc", file);
      assert.ok(![...e.header.pax.keys()].some((k) => k.includes("xattr")), "xattr records are not left in pax");
    }
  } finally {
    cleanup();
  }
});

test("reads GNU long names, v7, oldgnu, ustar prefix, base-256 ids, global PAX headers", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const deep = path.join(dir, "src", "a".repeat(90), "b".repeat(90));
    mkdirSync(deep, { recursive: true });
    const longFile = path.join(deep, `${"c".repeat(110)}.txt`);
    writeFileSync(longFile, "long");
    symlinkSync("t".repeat(140), path.join(dir, "src", "lnk"));
    const rel = path.relative(path.join(dir, "src"), longFile);
    const cases: [string, string[]][] = [
      ["gnu", ["--format=gnu"]],
      ["oldgnu", ["--format=oldgnu"]],
      ["posix", ["--format=posix", "--pax-option=comment=global-note"]],
    ];
    for (const [label, args] of cases) {
      const tarFile = path.join(dir, `${label}.tar`);
      run(
        "tar",
        [...args, "--owner=someone:3000000", "--group=grp:4000000", "-cf", tarFile, "."],
        path.join(dir, "src"),
      );
      const entries = await readAll(readFileSync(tarFile));
      const file = entries.find((e) => e.header.name === `./${rel}`);
      if (!file) throw new Error(`${label}: long name not found`);
      assert.equal(file.body.toString(), "long");
      assert.equal(file.header.uid, 3000000, label);
      assert.equal(file.header.gid, 4000000, label);
      assert.equal(file.header.uname, "someone", label);
      const link = entries.find((e) => e.header.name === "./lnk");
      assert.equal(link?.header.type, "symlink");
      assert.equal(link?.header.linkname, "t".repeat(140), label);
      // A global key that changes no entry is not copied into every entry (see the global PAX test below).
      if (label === "posix") assert.equal(file.header.pax.get("comment"), undefined);
    }
    // v7 and ustar (prefix split) with short enough names
    writeFileSync(path.join(dir, "v.txt"), "v7");
    mkdirSync(path.join(dir, "d"));
    const v7 = path.join(dir, "v7.tar");
    run("tar", ["--format=v7", "-cf", v7, "v.txt", "d"], dir);
    const v7e = await readAll(readFileSync(v7));
    assert.deepEqual(
      v7e.map((e) => [e.header.name, e.header.type]),
      [
        ["v.txt", "file"],
        ["d/", "dir"],
      ],
    );
    const mid = path.join(dir, "p".repeat(120));
    mkdirSync(mid);
    writeFileSync(path.join(mid, "f"), "u");
    const ustar = path.join(dir, "ustar.tar");
    run("tar", ["--format=ustar", "-cf", ustar, `${"p".repeat(120)}/f`], dir);
    const [u] = await readAll(readFileSync(ustar));
    assert.equal(u?.header.name, `${"p".repeat(120)}/f`);
  } finally {
    cleanup();
  }
});

/** A tar of regular files with the given bodies. */
function filesTar(files: [name: string, body: Buffer][]): Promise<Buffer> {
  return writeToBuffer(
    files.map(([name, body]) => {
      const header = emptyHeader(name, "file");
      header.size = body.length;
      return { header, body };
    }),
  );
}

/** `tar` cut into 777-byte pieces, to exercise chunk boundaries. */
function pieces777(tar: Buffer): Buffer[] {
  const pieces: Buffer[] = [];
  for (let i = 0; i < tar.length; i += 777) pieces.push(tar.subarray(i, i + 777));
  return pieces;
}

test("unread and partially read bodies are skipped", async () => {
  const tar = await filesTar([
    ["a", Buffer.alloc(200_000, 7)],
    ["b", Buffer.from("bbb")],
    ["c", Buffer.alloc(100_001, 9)],
  ]);
  const pieces = pieces777(tar);
  const names: string[] = [];
  let bBody = "";
  for await (const e of readTar(Readable.from(pieces))) {
    names.push(e.header.name);
    if (e.header.name === "c") {
      for await (const chunk of e.body) {
        assert.equal((chunk as Buffer)[0], 9);
        break; // partial read
      }
    }
    if (e.header.name === "b") for await (const chunk of e.body) bBody += String(chunk);
  }
  assert.deepEqual(names, ["a", "b", "c"]);
  assert.equal(bBody, "bbb");
});

test("content() reads whole bodies without a stream; a truncated body rejects it with TAR_INVALID", async () => {
  const tar = await filesTar([
    ["a", Buffer.alloc(200_000, 7)],
    ["b", Buffer.from("bbb")],
  ]);
  const pieces = pieces777(tar);
  const bodies: Buffer[] = [];
  for await (const e of readTar(Readable.from(pieces))) bodies.push(await e.content());
  assert.deepEqual(
    bodies.map((x) => [x.length, x[0]]),
    [
      [200_000, 7],
      [3, 0x62],
    ],
  );
  const reading = (async () => {
    for await (const e of readTar(Readable.from([tar.subarray(0, 100_000)]))) await e.content();
  })();
  await assert.rejects(reading, (e: unknown) => hasCode(e, "TAR_INVALID") && /truncated.*body of "a"/.test(e.message));
});

test("accepts an archive without end-of-archive blocks and trailing record padding", async () => {
  const h = emptyHeader("x", "file");
  h.size = 1;
  const tar = await writeToBuffer([{ header: h, body: Buffer.from("1") }]);
  assert.equal((await readAll(tar.subarray(0, 1024))).length, 1);
  assert.equal((await readAll(Buffer.concat([tar, Buffer.alloc(8192)]))).length, 1);
  assert.equal((await readAll(Buffer.alloc(0))).length, 0);
});

async function expectInvalid(data: Buffer, re: RegExp, opts?: { maxPaxBytes?: number }): Promise<void> {
  await assert.rejects(readAll(data, opts), (e: unknown) => hasCode(e, "TAR_INVALID") && re.test(e.message));
}

test("corrupt, truncated and oversized inputs are TAR_INVALID naming the entry", async () => {
  const h = emptyHeader("victim.txt", "file");
  h.size = 1000;
  const good = await writeToBuffer([{ header: h, body: Buffer.alloc(1000, 1) }]);
  const flipped = Buffer.from(good);
  flipped[10] = 0x41;
  await expectInvalid(flipped, /checksum/);
  await expectInvalid(good.subarray(0, 700), /truncated.*victim\.txt/);
  await expectInvalid(good.subarray(0, 300), /truncated/);
  await expectInvalid(Buffer.from("this is not a tar file at all".repeat(40)), /checksum|octal/);

  const bigPax = encodePax([["comment", Buffer.alloc(3000, 0x61)]]);
  const padded = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);
  const paxTar = Buffer.concat([rawHeader("PaxHeaders/x", "x", bigPax.length), padded(bigPax), rawHeader("x", "0", 0)]);
  assert.equal((await readAll(paxTar)).length, 1);
  await expectInvalid(paxTar, /PAX header.*limit of 1024/, { maxPaxBytes: 1024 });

  const many = Buffer.concat(
    Array.from({ length: 4 }, () => Buffer.concat([rawHeader("PaxHeaders/m", "x", bigPax.length), padded(bigPax)])),
  );
  await expectInvalid(Buffer.concat([many, rawHeader("m", "0", 0)]), /exceed the limit of 10000/, {
    maxPaxBytes: 10000,
  });

  const badPax = Buffer.from("99 path=x\n");
  await expectInvalid(
    Buffer.concat([rawHeader("PaxHeaders/y", "x", badPax.length), padded(badPax), rawHeader("y", "0", 0)]),
    /malformed PAX header/,
  );
  await expectInvalid(Buffer.concat([rawHeader("././@LongLink", "L", 70_000), Buffer.alloc(70_144)]), /long name/);
  await expectInvalid(Buffer.concat([rawHeader("PaxHeaders/z", "x", badPax.length), padded(badPax)]), /malformed/);
  const onlyPax = encodePax([["path", Buffer.from("q")]]);
  await expectInvalid(Buffer.concat([rawHeader("PaxHeaders/q", "x", onlyPax.length), padded(onlyPax)]), /ends after/);
  await expectInvalid(rawHeader("huge", "0", 0).fill(0xff, 124, 136), /checksum|range/);
});

test("PAX records are binary safe and override header fields; LIBARCHIVE.xattr is base64", async () => {
  const pax = encodePax([
    ["path", Buffer.from("real/name")],
    ["mtime", Buffer.from("1234.5")],
    ["SCHILY.xattr.user.nl", Buffer.from([0x0a, 0x00, 0x0a])],
    ["LIBARCHIVE.xattr.user.b64%3D", Buffer.from(Buffer.from([1, 2, 0x0a]).toString("base64"))],
    ["custom.key", Buffer.from("v")],
  ]);
  const padded = Buffer.concat([pax, Buffer.alloc((512 - (pax.length % 512)) % 512)]);
  const [e] = await readAll(
    Buffer.concat([rawHeader("PaxHeaders/x", "x", pax.length), padded, rawHeader("x", "0", 0)]),
  );
  if (!e) throw new Error("no entry");
  assert.equal(e.header.name, "real/name");
  assert.equal(e.header.mtime, 1234.5);
  assert.deepEqual([...(e.header.xattrs.get("user.nl") ?? [])], [0x0a, 0x00, 0x0a]);
  assert.deepEqual([...(e.header.xattrs.get("user.b64=") ?? [])], [1, 2, 0x0a]);
  assert.deepEqual([...e.header.pax.keys()], ["custom.key"]);
});

test("lists the kaniko conformance tarballs exactly like GNU tar", async () => {
  const base = path.resolve(process.cwd(), "../shared/conformance/kaniko-integration/integration");
  const files = ["tar.tar", "context/tars/file.tar", "context/tars/file.tar.gz", "context/tars/sys.tar.gz"];
  for (const f of files) {
    const file = path.join(base, f);
    const expected = run("tar", ["-tf", file])
      .split("\n")
      .filter((l) => l !== "");
    const names: string[] = [];
    for await (const e of readTar(await decompressAuto(createReadStream(file)))) {
      names.push(e.header.name);
      let n = 0;
      for await (const c of e.body) n += (c as Buffer).length;
      assert.equal(n, e.header.size, `${f}: body of ${e.header.name}`);
    }
    assert.ok(names.length > 0, f);
    assert.deepEqual(
      names.map((n) => n),
      expected,
      f,
    );
  }
});

test("negative base-256 fields: a time before 1970 is read, a negative owner is refused", async () => {
  /** One header-only entry whose `field` (offset, width) holds `value` as a base-256 number. */
  const withBase256 = async (off: number, len: number, value: number): Promise<Buffer> => {
    const tar = await writeToBuffer([{ header: { ...emptyHeader("f", "file"), mtime: 1 } }]);
    const block = tar.subarray(0, 512);
    const field = Buffer.alloc(len, value < 0 ? 0xff : 0);
    field.writeBigInt64BE(BigInt(value), len - 8);
    if (value >= 0) field[0] = 0x80;
    field.copy(block, off);
    block.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of block) sum += b;
    block.write(sum.toString(8).padStart(6, "0"), 148, 6, "latin1");
    block[154] = 0;
    return tar;
  };
  const [old] = await readAll(await withBase256(136, 12, -86400));
  assert.equal(old?.header.mtime, -86400);
  await assert.rejects(readAll(await withBase256(108, 8, -1)), (e: unknown) => {
    assert.ok(hasCode(e, "TAR_INVALID"));
    assert.match(String(e), /negative owner/);
    return true;
  });
});

test(
  "global PAX headers: keys that change entries apply to every entry, others are not copied; 5,000 keys are TAR_INVALID",
  { timeout: 20_000 },
  async () => {
    const entries = (n: number): Buffer[] => Array.from({ length: n }, (_, i) => rawHeader(`d${i}/`, "5", 0));
    const globals = paxHeader("g", [
      ["uid", Buffer.from("42")],
      ["SCHILY.xattr.user.g", Buffer.from("gv")],
      ["comment", Buffer.from("not an entry's business")],
    ]);
    const read = await readAll(Buffer.concat([globals, ...entries(3)]));
    assert.equal(read.length, 3);
    for (const e of read) {
      assert.equal(e.header.uid, 42);
      assert.equal(e.header.xattrs.get("user.g")?.toString(), "gv");
      assert.equal(e.header.pax.size, 0, "unknown global keys are not copied into each entry");
    }

    // Every entry used to get a copy of every global key: keys × entries work and memory.
    const many = paxHeader(
      "g",
      Array.from({ length: 5000 }, (_, i): [string, Buffer] => [`k${i}`, Buffer.from("v")]),
    );
    const names: string[] = [];
    const reading = (async () => {
      for await (const e of readTar(Readable.from([Buffer.concat([many, ...entries(200)])]))) names.push(e.header.name);
    })();
    await assert.rejects(reading, (e: unknown) => hasCode(e, "TAR_INVALID") && /more than 1000 keys/.test(e.message));
    assert.deepEqual(names, []);

    // Bytes in force are capped too (maxPaxBytes), across several global headers.
    const half = paxHeader("g", [["k1", Buffer.alloc(700, 0x61)]]);
    const other = paxHeader("g", [["k2", Buffer.alloc(700, 0x61)]]);
    await expectInvalid(Buffer.concat([half, other, ...entries(1)]), /more than 1024 bytes/, { maxPaxBytes: 1024 });
    const replaced = paxHeader("g", [["k1", Buffer.alloc(700, 0x62)]]);
    assert.equal((await readAll(Buffer.concat([half, replaced, ...entries(1)]), { maxPaxBytes: 1024 })).length, 1);
  },
);

test("sparse entries: pieces() leaves holes out; holes beyond the archive's limit are TAR_INVALID", async () => {
  const tar = Buffer.concat([sparse10Entry("s", 10_000_000, 9_000_000, Buffer.from("DATA")), Buffer.alloc(1024)]);
  for await (const e of readTar(Readable.from([tar]))) {
    assert.equal(e.header.size, 10_000_000);
    const pieces: [number, string][] = [];
    for await (const p of e.pieces()) pieces.push([p.offset, p.data.toString()]);
    assert.deepEqual(pieces, [[9_000_000, "DATA"]]);
  }
  // Body and content() still expand the holes.
  const [whole] = await readAll(tar);
  assert.equal(whole?.body.length, 10_000_000);
  assert.equal(whole?.body.subarray(9_000_000, 9_000_004).toString(), "DATA");

  // A 3 KiB entry claiming a petabyte: refused before any body is read.
  const bomb = Buffer.concat([sparse10Entry("big", 2 ** 50, 0, Buffer.alloc(0)), Buffer.alloc(1024)]);
  const names: string[] = [];
  const reading = (async () => {
    for await (const e of readTar(Readable.from([bomb]))) names.push(`${e.header.name} ${e.header.size}`);
  })();
  await assert.rejects(
    reading,
    (e: unknown) => hasCode(e, "TAR_INVALID") && /"big".*limit of 68719476736/.test(e.message),
  );
  assert.deepEqual(names, []);
  // The limit is for the whole archive: two entries, each within it, can exceed it together.
  const two = Buffer.concat([
    sparse10Entry("a", 6000, 0, Buffer.from("x")),
    sparse10Entry("b", 6000, 0, Buffer.from("y")),
  ]);
  assert.equal((await readAll(two, { maxSparseHoleBytes: 12_000 })).length, 2);
  await assert.rejects(
    readAll(two, { maxSparseHoleBytes: 10_000 }),
    (e: unknown) => hasCode(e, "TAR_INVALID") && /"b"/.test(e.message),
  );
});
