import * as assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { PassThrough, Readable } from "node:stream";
import { test } from "node:test";
import { hasCode } from "../../common/errors.js";
import { readAll, run, tempDir, writeToBuffer } from "./testing.js";
import { emptyHeader, type TarHeader } from "./index.js";
import { TarWriter } from "./writer.js";

// security.capability v2 value for cap_dac_override,cap_fowner+ep: contains 0x0A and 0x00 bytes.
const CAP = Buffer.from("01000002" + "0a000000" + "0".repeat(24), "hex");

function sample(): { header: TarHeader; body?: Uint8Array }[] {
  const dir = emptyHeader("etc/", "dir");
  dir.mtime = 1700000000;
  const file = emptyHeader("etc/app.conf", "file");
  file.size = 5;
  file.mode = 0o4755;
  file.uid = 3_000_000; // beyond 7 octal digits → PAX
  file.gid = 12;
  file.uname = "builder";
  file.gname = "staff";
  file.mtime = 1700000000.123456;
  file.xattrs.set("security.capability", CAP);
  file.xattrs.set("user.bin", Buffer.from([0, 0x0a, 0xff, 0x3d, 0x20, 0]));
  const long100 = emptyHeader(`${"d".repeat(60)}/${"n".repeat(60)}`, "file"); // >100, ustar prefix split
  const long300 = emptyHeader(`${"x/".repeat(150)}end.txt`, "file"); // >255 → PAX path
  long300.size = 2;
  const uni = emptyHeader("usr/share/ünïcödé-名前", "symlink");
  uni.linkname = `../${"t".repeat(120)}`;
  const hard = emptyHeader("etc/hard", "hardlink");
  hard.linkname = "etc/app.conf";
  const dev = emptyHeader("dev/null", "char");
  dev.mode = 0o666;
  dev.devmajor = 1;
  dev.devminor = 3;
  const fifo = emptyHeader("run/fifo", "fifo");
  const extra = emptyHeader("extra", "file");
  extra.pax.set("comment", Buffer.from("hi\nthere"));
  return [
    { header: dir },
    { header: file, body: Buffer.from("hello") },
    { header: long100, body: new Uint8Array() },
    { header: long300, body: Buffer.from("ab") },
    { header: uni },
    { header: hard },
    { header: dev },
    { header: fifo },
    { header: extra, body: new Uint8Array() },
  ];
}

test("round trip keeps every field, binary xattrs, long and non-ASCII names, large ids, fractional mtime", async () => {
  const entries = sample();
  const tar = await writeToBuffer(entries);
  const back = await readAll(tar);
  assert.equal(back.length, entries.length);
  for (let i = 0; i < entries.length; i++) {
    const want = entries[i];
    const got = back[i];
    if (!want || !got) throw new Error("missing entry");
    assert.deepEqual(got.header, want.header, `entry ${want.header.name}`);
    assert.deepEqual(got.body, Buffer.from(want.body ?? new Uint8Array()));
  }
  assert.equal(back[1]?.header.xattrs.get("security.capability")?.toString("hex"), CAP.toString("hex"));
});

test("output is deterministic and block aligned", async () => {
  const a = await writeToBuffer(sample());
  const b = await writeToBuffer(sample());
  assert.ok(a.equals(b));
  assert.equal(a.length % 512, 0);
  assert.ok(a.subarray(a.length - 1024).every((x) => x === 0));
});

test("a plain short entry has no PAX header", async () => {
  const h = emptyHeader("a.txt", "file");
  h.size = 1;
  const tar = await writeToBuffer([{ header: h, body: Buffer.from("z") }]);
  assert.equal(tar.length, 512 + 512 + 1024);
  assert.equal(tar[156], "0".charCodeAt(0));
});

test("GNU tar and bsdtar list what TarWriter writes identically", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = path.join(dir, "t.tar");
    writeFileSync(file, await writeToBuffer(sample()));
    const gnu = run("tar", ["--numeric-owner", "-tvf", file]).trim().split("\n");
    const bsd = run("bsdtar", ["--numeric-owner", "-tvf", file]).trim().split("\n");
    assert.equal(gnu.length, sample().length);
    const norm = (line: string): string[] => {
      const f = line.trim().split(/\s+/);
      return [f[0] ?? "", ...f.slice(-3)];
    };
    // mode string and the name / link target columns agree (date formats differ between the tools)
    const names = sample().map((e) => e.header.name);
    for (let i = 0; i < names.length; i++) {
      const g = gnu[i] ?? "";
      const b = bsd[i] ?? "";
      assert.ok(g.includes(names[i] ?? "?"), `gnu lists ${names[i]}: ${g}`);
      assert.ok(b.includes(names[i] ?? "?"), `bsdtar lists ${names[i]}: ${b}`);
      assert.equal(g.split(/\s+/)[0]?.replace(/\*$/, ""), b.split(/\s+/)[0], `mode of ${names[i]}`);
      void norm;
    }
    assert.match(gnu[1] ?? "", /-rwsr-xr-x\*? 3000000\/12\s+5 /);
    assert.match(bsd[1] ?? "", /-rwsr-xr-x\s+0 3000000\s+12\s+5 /);
    assert.match(gnu[4] ?? "", new RegExp(`-> \\.\\./t{120}$`));
    assert.match(bsd[4] ?? "", new RegExp(`-> \\.\\./t{120}$`));
    assert.match(gnu[5] ?? "", /link to etc\/app\.conf$/);
    assert.match(bsd[5] ?? "", /link to etc\/app\.conf$/);
    assert.match(gnu[6] ?? "", /^crw-rw-rw- 0\/0\s+1,3 /);
    assert.match(bsd[6] ?? "", /^crw-rw-rw-\s+0 0\s+0\s+1,\s*3 /);
  } finally {
    cleanup();
  }
});

test("xattrs written by TarWriter are restored by GNU tar and bsdtar, byte-exact", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = path.join(dir, "t.tar");
    writeFileSync(file, await writeToBuffer(sample().slice(0, 2)));
    const listing = run("tar", ["--xattrs", "--xattrs-include=*", "-tvvf", file]);
    assert.match(listing, /x:\s+6 user\.bin/);
    for (const [tool, args] of [
      ["tar", ["--xattrs", "--xattrs-include=*", "-xf", file]],
      ["bsdtar", ["--xattrs", "-xf", file]],
    ] as const) {
      const out = path.join(dir, tool);
      run("mkdir", ["-p", out]);
      run(tool, [...args, "-C", out]);
      const target = path.join(out, "etc/app.conf");
      const cap = run("getfattr", ["--absolute-names", "-e", "hex", "-n", "security.capability", target]);
      assert.match(cap, new RegExp(`security.capability=0x${CAP.toString("hex")}`), tool);
      const bin = run("getfattr", ["--absolute-names", "-e", "hex", "-n", "user.bin", target]);
      assert.match(bin, /user\.bin=0x000aff3d2000/, tool);
      assert.match(run("getcap", [target]), /cap_dac_override,cap_fowner=ep/);
      assert.equal(readFileSync(target, "utf8"), "hello");
    }
  } finally {
    cleanup();
  }
});

test("streams a Readable body and rejects a body of the wrong length", async () => {
  const h = emptyHeader("big", "file");
  h.size = 300_000;
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on("data", (c: Buffer) => chunks.push(c));
  const w = new TarWriter(out);
  await w.add(h, Readable.from([Buffer.alloc(100_000, 1), Buffer.alloc(200_000, 2)]));
  await w.finish();
  const back = await readAll(Buffer.concat(chunks));
  assert.equal(back[0]?.body.length, 300_000);
  assert.equal(back[0]?.body[150_000], 2);

  const bad = new TarWriter(new PassThrough().resume());
  await assert.rejects(
    bad.add({ ...h, name: "short" }, Readable.from([Buffer.alloc(10)])),
    (e: unknown) => hasCode(e, "TAR_WRITE") && /short/.test(e.message),
  );
  await assert.rejects(
    bad.add(emptyHeader("after", "dir")),
    (e: unknown) => hasCode(e, "TAR_WRITE"),
    "writer stays failed",
  );
  await assert.rejects(
    new TarWriter(new PassThrough().resume()).add({ ...h, name: "long" }, Buffer.alloc(300_001)),
    (e: unknown) => hasCode(e, "TAR_WRITE"),
  );
  const link = emptyHeader("l", "symlink");
  link.size = 3;
  await assert.rejects(new TarWriter(new PassThrough().resume()).add(link), (e: unknown) => hasCode(e, "TAR_WRITE"));
});
