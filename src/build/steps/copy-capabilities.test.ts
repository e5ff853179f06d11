import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { lstat, mkdir, symlink, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { DirContext } from "../../context/index.js";
import { cannotSetCapabilities, makeSandbox } from "../../fs/test-helpers.js";
import { copyIntoRoot, type CopyItem } from "./copy.js";

const CAP = "0x0100000200040000000000000000000000000000";

async function match(from: DirContext, rel: string, keep = ""): Promise<CopyItem> {
  const abs = path.join(from.root, rel);
  return { kind: "match", match: { rel, abs, stat: await lstat(abs), keep }, from };
}

test("COPY --from tells the snapshot the capabilities it set, so they are not read again", async (t) => {
  if (await cannotSetCapabilities(t)) return;
  const sb = await makeSandbox();
  try {
    const src = path.join(sb.base, "stage");
    await mkdir(path.join(src, "bin"), { recursive: true });
    await writeFile(path.join(src, "bin/ping"), "ping");
    execFileSync("setfattr", ["-n", "security.capability", "-v", CAP, path.join(src, "bin/ping")]);
    await writeFile(path.join(src, "bin/plain"), "plain");
    await writeFile(path.join(src, "file"), "a file");
    await symlink("plain", path.join(src, "link"));
    const from = await DirContext.open(src, []);
    const r = await copyIntoRoot(
      sb.root,
      [await match(from, "bin"), await match(from, "file"), await match(from, "link")],
      "/out/",
      "/",
      { preserveOwners: true, keepCapabilities: true },
    );
    // The files below a copied directory are known too; the symlink is not a file the copier vouches for.
    assert.deepEqual([...(r.capabilities?.checked ?? [])].sort(), ["/out/file", "/out/ping", "/out/plain"]);
    assert.deepEqual(
      [...(r.capabilities?.values ?? [])].map(([p, v]) => [p, v.toString("hex")]),
      [["/out/ping", CAP.slice(2)]],
    );
    const got = execFileSync(
      "getfattr",
      ["--absolute-names", "-n", "security.capability", "-e", "hex", path.join(sb.root, "out/ping")],
      {
        encoding: "utf8",
      },
    );
    assert.match(got, new RegExp(`security.capability=${CAP}`));
  } finally {
    await sb.cleanup();
  }
});

test("a copied file that a later source of the same COPY replaces is no longer vouched for", async (t) => {
  if (await cannotSetCapabilities(t)) return;
  const sb = await makeSandbox();
  try {
    const a = path.join(sb.base, "a");
    const b = path.join(sb.base, "b");
    await mkdir(path.join(a, "app"), { recursive: true });
    await mkdir(b, { recursive: true });
    await writeFile(path.join(a, "app/tool"), "tool");
    execFileSync("setfattr", ["-n", "security.capability", "-v", CAP, path.join(a, "app/tool")]);
    await symlink("/bin/true", path.join(b, "tool"));
    const first = await DirContext.open(a, []);
    const second = await DirContext.open(b, []);
    // app/ copies app/tool to /dest/tool; then the symlink "tool" replaces it.
    const r = await copyIntoRoot(sb.root, [await match(first, "app"), await match(second, "tool")], "/dest/", "/", {
      preserveOwners: true,
      keepCapabilities: true,
    });
    assert.ok((await lstat(path.join(sb.root, "dest/tool"))).isSymbolicLink());
    assert.equal(r.capabilities?.checked.has("/dest/tool") ?? false, false);
    assert.equal(r.capabilities?.values.has("/dest/tool") ?? false, false);
  } finally {
    await sb.cleanup();
  }
});
