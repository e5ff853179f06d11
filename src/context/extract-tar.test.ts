import assert from "node:assert/strict";
import { lstat, mkdtemp, readFile, readlink, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PassThrough, Readable } from "node:stream";
import { after, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { KilnError } from "../common/errors.js";
import { emptyHeader, TarWriter, type TarEntryType } from "../image/index.js";
import { extractContextTar } from "./extract-tar.js";

interface Entry {
  name: string;
  type?: TarEntryType;
  body?: string | Buffer;
  linkname?: string;
  mode?: number;
}

async function makeTar(entries: Entry[]): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on("data", (c: Buffer) => chunks.push(c));
  const w = new TarWriter(out);
  for (const e of entries) {
    const type = e.type ?? (e.linkname !== undefined ? "symlink" : e.body !== undefined ? "file" : "dir");
    const h = emptyHeader(e.name, type);
    if (e.mode !== undefined) h.mode = e.mode;
    if (e.linkname !== undefined) h.linkname = e.linkname;
    const body = e.body === undefined ? undefined : Buffer.from(e.body);
    if (body) h.size = body.length;
    await w.add(h, body);
  }
  await w.finish();
  return Buffer.concat(chunks);
}

const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), "kiln-ctx-"));
  dirs.push(d);
  return d;
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function code(c: string): (e: unknown) => boolean {
  return (e) => e instanceof KilnError && e.code === c;
}

describe("extractContextTar", () => {
  it("unpacks gzip, plain and nested entries with modes", async () => {
    const tar = await makeTar([
      { name: "Dockerfile", body: "FROM scratch\n" },
      { name: "app/" },
      { name: "app/run.sh", body: "#!/bin/sh\n", mode: 0o755 },
      { name: "app/link", linkname: "run.sh" },
    ]);
    for (const input of [tar, gzipSync(tar)]) {
      const d = await tmp();
      const r = await extractContextTar(Readable.from([input]), d, "test");
      assert.equal(r.entries, 4);
      assert.equal(await readFile(path.join(d, "Dockerfile"), "utf8"), "FROM scratch\n");
      assert.equal((await lstat(path.join(d, "app/run.sh"))).mode & 0o777, 0o755);
      assert.equal(await readlink(path.join(d, "app/link")), "run.sh");
    }
  });

  it("rejects .. names and strips leading slashes", async () => {
    const d = await tmp();
    await assert.rejects(
      extractContextTar(Readable.from([await makeTar([{ name: "../evil", body: "x" }])]), d, "t"),
      code("CONTEXT_UNSAFE"),
    );
    const d2 = await tmp();
    await extractContextTar(Readable.from([await makeTar([{ name: "/abs/file", body: "y" }])]), d2, "t");
    assert.equal(await readFile(path.join(d2, "abs/file"), "utf8"), "y");
  });

  it("never writes through a symlink out of the context", async () => {
    const outside = await tmp();
    const d = await tmp();
    const tar = await makeTar([
      { name: "esc", linkname: outside },
      { name: "esc/pwned", body: "x" },
      { name: "up", linkname: "../../../../../../" + outside.slice(1) },
      { name: "up/pwned2", body: "x" },
    ]);
    await extractContextTar(Readable.from([tar]), d, "t");
    assert.deepEqual(await readdir(outside), []);
    // Writes were re-rooted inside the context.
    assert.equal(await readFile(path.join(d, outside, "pwned"), "utf8"), "x");
  });

  it("rejects hardlinks that point outside or to nothing", async () => {
    const d = await tmp();
    await assert.rejects(
      extractContextTar(
        Readable.from([await makeTar([{ name: "h", type: "hardlink", linkname: "../../etc/passwd" }])]),
        d,
        "t",
      ),
      code("CONTEXT_UNSAFE"),
    );
    await assert.rejects(
      extractContextTar(
        Readable.from([await makeTar([{ name: "h", type: "hardlink", linkname: "/etc/passwd" }])]),
        d,
        "t",
      ),
      code("CONTEXT_UNSAFE"),
    );
    const ok = await tmp();
    await extractContextTar(
      Readable.from([
        await makeTar([
          { name: "a", body: "A" },
          { name: "b", type: "hardlink", linkname: "a" },
        ]),
      ]),
      ok,
      "t",
    );
    assert.equal((await lstat(path.join(ok, "b"))).nlink, 2);
  });

  it("bounds total size, entry count and depth", async () => {
    // 64 MiB of zeros gzip to ~64 KiB: a 1000:1 bomb, refused at 1 MiB.
    const big = gzipSync(await makeTar([{ name: "zeros", body: Buffer.alloc(64 * 1024 * 1024) }]));
    assert.ok(big.length < 1024 * 1024);
    await assert.rejects(
      extractContextTar(Readable.from([big]), await tmp(), "t", { maxBytes: 1024 * 1024 }),
      (e: unknown) => code("CONTEXT_TOO_LARGE")(e) && /more than 1048576 bytes/.test((e as Error).message),
    );
    const many = await makeTar(Array.from({ length: 20 }, (_, i) => ({ name: `f${i}`, body: "" })));
    await assert.rejects(
      extractContextTar(Readable.from([many]), await tmp(), "t", { maxEntries: 10 }),
      code("CONTEXT_TOO_LARGE"),
    );
    const deep = await makeTar([{ name: Array.from({ length: 40 }, () => "d").join("/") + "/f", body: "x" }]);
    await assert.rejects(
      extractContextTar(Readable.from([deep]), await tmp(), "t", { maxDepth: 32 }),
      code("CONTEXT_TOO_LARGE"),
    );
  });

  it("leaves nothing behind when it refuses an archive", async () => {
    const d = path.join(await tmp(), "ctx");
    const tar = await makeTar([
      { name: "ok", body: "fine" },
      { name: "sub/" },
      ...Array.from({ length: 20 }, (_, i) => ({ name: `sub/f${i}`, body: "x" })),
    ]);
    await assert.rejects(
      extractContextTar(Readable.from([tar]), d, "t", { maxEntries: 10 }),
      code("CONTEXT_TOO_LARGE"),
    );
    await assert.rejects(lstat(d), /ENOENT/);
  });

  it("refuses names longer than PATH_MAX before touching the disk", async () => {
    const d = await tmp();
    const tar = await makeTar([{ name: `${"n".repeat(200)}/`.repeat(25) + "f", body: "x" }]);
    await assert.rejects(
      extractContextTar(Readable.from([tar]), d, "t"),
      (e: unknown) => code("CONTEXT_UNSAFE")(e) && /more than 4096/.test((e as Error).message),
    );
  });

  it("restores directory mtimes without following a symlink that replaced the directory", async () => {
    const outside = await tmp();
    const before = (await lstat(outside)).mtimeMs;
    const d = await tmp();
    const tar = await makeTar([
      { name: "a/" },
      { name: "a/f", body: "x" },
      { name: "a", linkname: outside },
      // Repeated entries for one directory keep one record (no growth per entry).
      ...Array.from({ length: 50 }, () => ({ name: "keep/" })),
    ]);
    await extractContextTar(Readable.from([tar]), d, "t");
    assert.equal((await lstat(outside)).mtimeMs, before);
    assert.ok((await lstat(path.join(d, "a"))).isSymbolicLink());
    assert.ok((await lstat(path.join(d, "keep"))).isDirectory());
  });

  it("fails on a stream that is not a tar", async () => {
    await assert.rejects(
      extractContextTar(Readable.from([Buffer.alloc(1024, 7)]), await tmp(), "t"),
      code("TAR_INVALID"),
    );
  });
});
