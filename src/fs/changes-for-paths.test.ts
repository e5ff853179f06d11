import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import { readTar } from "../image/tar/index.js";
import { changesForPaths } from "./changes-for-paths.js";
import type { Changes } from "./changes.js";
import { FileIndex } from "./file-index.js";
import { cannotSetCapabilities, makeSandbox } from "./test-helpers.js";
import { writeChangesTar } from "./write-changes-tar.js";

const CAP = "0x0100000200040000000000000000000000000000";

/** Writes the layer of `changes` to `tarPath` and answers each entry's security.capability (hex) by name. */
async function layerCapabilities(root: string, changes: Changes, tarPath: string): Promise<Map<string, string>> {
  await writeChangesTar(root, changes, createWriteStream(tarPath));
  const caps = new Map<string, string>();
  for await (const e of readTar(Readable.from([await readFile(tarPath)]))) {
    const v = e.header.xattrs.get("security.capability");
    if (v) caps.set(e.header.name, v.toString("hex"));
    e.body.resume();
  }
  return caps;
}

test("noCapabilities skips the attribute read for the given files only: one below a given directory is still read", async (t) => {
  if (await cannotSetCapabilities(t)) return;
  const sb = await makeSandbox();
  try {
    const r = sb.root;
    await mkdir(path.join(r, "usr/bin"), { recursive: true });
    await writeFile(path.join(r, "usr/bin/ping"), "ping");
    execFileSync("setfattr", ["-n", "security.capability", "-v", CAP, path.join(r, "usr/bin/ping")]);
    await writeFile(path.join(r, "usr/bin/new"), "new");
    // A capability on a given file, which the caller below vouches (here wrongly) it does not carry: the
    // writer then does not read it, which shows the attribute read is skipped.
    execFileSync("setfattr", ["-n", "security.capability", "-v", CAP, path.join(r, "usr/bin/new")]);
    const plain = await changesForPaths(r, new FileIndex(), ["/usr/bin", "/usr/bin/new"]);
    assert.equal(plain.capabilities, undefined);
    const c = await changesForPaths(r, new FileIndex(), ["/usr/bin", "/usr/bin/new"], { noCapabilities: true });
    assert.deepEqual([...(c.capabilities?.checked ?? [])].sort(), ["/usr/bin", "/usr/bin/new"]);
    assert.equal(c.capabilities?.values.size, 0);
    assert.ok(c.changed.includes("/usr/bin/ping"), "the directory's existing file is in the change set");
    const caps = await layerCapabilities(r, c, path.join(sb.base, "l.tar"));
    assert.deepEqual([...caps.keys()], ["usr/bin/ping"], "read for the walked file only");
    assert.equal(caps.get("usr/bin/ping"), CAP.slice(2));
  } finally {
    await sb.cleanup();
  }
});

test("knownCapabilities: the writer takes the caller's values for its files and reads only the others", async (t) => {
  if (await cannotSetCapabilities(t)) return;
  const sb = await makeSandbox();
  try {
    const r = sb.root;
    await mkdir(path.join(r, "app"), { recursive: true });
    for (const f of ["known-set", "known-none", "unknown"]) {
      await writeFile(path.join(r, "app", f), f);
      execFileSync("setfattr", ["-n", "security.capability", "-v", CAP, path.join(r, "app", f)]);
    }
    // The caller's word differs from the disk on purpose, so that the tar shows whose answer was used.
    const other = Buffer.from("0100000200200000000000000000000000000000", "hex");
    const c = await changesForPaths(r, new FileIndex(), ["/app"], {
      knownCapabilities: {
        checked: new Set(["/app/known-set", "/app/known-none"]),
        values: new Map([["/app/known-set", other]]),
      },
    });
    const caps = await layerCapabilities(r, c, path.join(sb.base, "l.tar"));
    assert.deepEqual(Object.fromEntries(caps), {
      "app/known-set": other.toString("hex"),
      "app/unknown": CAP.slice(2),
    });
  } finally {
    await sb.cleanup();
  }
});
