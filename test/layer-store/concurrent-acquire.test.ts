import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildTar, type Spec } from "../../src/fs/test-helpers.js";
import { removeDir, repoRoot, tempDir } from "../support/tmp.js";

interface ChildResult {
  hit: boolean;
  tree: string;
  files: number;
}

/** Starts the acquire child; resolves `ready` once it waits for "go", `done` with its result. */
function child(store: string, tar: string, diffId: string) {
  // Compiled (dist/test) next to this file, or the TypeScript source through tsx.
  const here = path.dirname(fileURLToPath(import.meta.url));
  const js = path.join(here, "acquire-child.js");
  const entry = existsSync(js) ? [js] : ["--import", "tsx", path.join(here, "acquire-child.ts")];
  const p = spawn(process.execPath, [...entry, store, tar, diffId], {
    stdio: ["pipe", "pipe", "pipe"],
    cwd: repoRoot(),
  });
  let out = "";
  let err = "";
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => (onReady = r));
  p.stdout.on("data", (d: Buffer) => {
    out += d.toString();
    if (out.includes("ready\n")) onReady();
  });
  p.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const done = new Promise<ChildResult>((resolve, reject) =>
    p.on("close", (code) => {
      if (code !== 0) reject(new Error(`child exited ${code}: ${err}`));
      else resolve(JSON.parse(out.split("\n").filter((l) => l.startsWith("{"))[0] ?? "{}") as ChildResult);
    }),
  );
  return { proc: p, ready, done };
}

test("two processes extracting the same layer at once: one entry is published, both use it", async () => {
  const dir = await tempDir("store-concurrent");
  try {
    const specs: Spec[] = [];
    for (let d = 0; d < 20; d++) {
      specs.push({ name: `d${d}/`, type: "dir" });
      for (let f = 0; f < 100; f++) specs.push({ name: `d${d}/f${f}`, body: `${d}/${f}\n` });
    }
    const tar = await buildTar(specs);
    const tarPath = path.join(dir, "layer.tar");
    await writeFile(tarPath, tar);
    const diffId = `sha256:${createHash("sha256").update(tar).digest("hex")}`;
    const store = path.join(dir, "store");
    const a = child(store, tarPath, diffId);
    const b = child(store, tarPath, diffId);
    await Promise.all([a.ready, b.ready]);
    a.proc.stdin.end("go\n");
    b.proc.stdin.end("go\n");
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assert.equal(ra.tree, rb.tree);
    assert.equal(ra.files, 2020);
    assert.equal(rb.files, 2020);
    assert.ok(!ra.hit || !rb.hit, "at least one of them extracted");
    assert.deepEqual(await readdir(path.join(store, "layers", "sha256")), [diffId.slice(7)]);
    assert.deepEqual(await readdir(path.join(store, "tmp")), [], "the loser's copy is discarded");
    assert.equal(await readFile(path.join(ra.tree, "d7", "f42"), "utf8"), "7/42\n");
    assert.equal((await readdir(path.join(ra.tree))).length, 20);
  } finally {
    await removeDir(dir);
  }
});
