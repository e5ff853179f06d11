// Test support for src/fs (imported only by *.test.ts files).
import * as assert from "node:assert/strict";
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { Readable, Writable } from "node:stream";
import { hasCode } from "../common/errors.js";
import { TarWriter, emptyHeader } from "../image/tar/index.js";
import type { TarEntryType, TarHeader } from "../image/tar/index.js";
import type { TestContext } from "node:test";
import { applyLayer } from "./apply-layer.js";
import type { ApplyOptions, ApplyResult } from "./apply-layer.js";
import { findTool } from "./exec-tool.js";

/** A temp dir with `root/` (the build root) and a sibling `canary/` that no layer may touch. */
export interface Sandbox {
  base: string;
  root: string;
  canary: string;
  cleanup(): Promise<void>;
}

const CANARY_MTIME = 1_000_000_000;

/** Creates a sandbox; the canary holds `secret` (content "canary", fixed mtime) and `sub/inner`. */
export async function makeSandbox(): Promise<Sandbox> {
  const base = await mkdtemp(path.join(tmpdir(), "kiln-fs-"));
  const root = path.join(base, "root");
  const canary = path.join(base, "canary");
  await mkdir(root);
  await mkdir(path.join(canary, "sub"), { recursive: true });
  await writeFile(path.join(canary, "secret"), "canary");
  await writeFile(path.join(canary, "sub", "inner"), "inner");
  await utimes(path.join(canary, "secret"), CANARY_MTIME, CANARY_MTIME);
  return { base, root, canary, cleanup: () => rm(base, { recursive: true, force: true }) };
}

/** Asserts the canary dir holds exactly its original files, contents and mtime. */
export async function assertCanaryIntact(sb: Sandbox): Promise<void> {
  assert.deepEqual((await readdir(sb.canary)).sort(), ["secret", "sub"]);
  assert.deepEqual(await readdir(path.join(sb.canary, "sub")), ["inner"]);
  assert.equal(await readFile(path.join(sb.canary, "secret"), "utf8"), "canary");
  assert.equal(await readFile(path.join(sb.canary, "sub", "inner"), "utf8"), "inner");
  const st = await lstat(path.join(sb.canary, "secret"));
  assert.ok(st.isFile());
  assert.equal(Math.floor(st.mtimeMs / 1000), CANARY_MTIME);
  assert.deepEqual((await readdir(sb.base)).sort(), ["canary", "root"]);
}

/** One entry for {@link buildTar}: a name, a type and optional header fields / body. */
export interface Spec extends Partial<Omit<TarHeader, "name" | "type">> {
  name: string;
  type?: TarEntryType;
  body?: string | Buffer;
}

/** Builds a tar in memory with the project's TarWriter. */
export async function buildTar(specs: readonly Spec[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  const w = new TarWriter(out);
  for (const s of specs) {
    const { name, type, body, ...rest } = s;
    const h: TarHeader = { ...emptyHeader(name, type ?? "file"), ...rest };
    const buf = body === undefined ? undefined : Buffer.from(body);
    if (buf !== undefined) h.size = buf.length;
    await w.add(h, buf);
  }
  await w.finish();
  return Buffer.concat(chunks);
}

/** Applies an in-memory tar to `root`. */
export function applyBuffer(root: string, tar: Buffer, opts?: ApplyOptions): Promise<ApplyResult> {
  return applyLayer(root, Readable.from([tar]), opts);
}

/** Builds and applies a layer. */
export async function applySpecs(root: string, specs: readonly Spec[], opts?: ApplyOptions): Promise<ApplyResult> {
  return applyBuffer(root, await buildTar(specs), opts);
}

/** Asserts that `p` rejects with a KilnError of `code`. */
export async function assertCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(hasCode(e, code), `expected ${code}, got ${String(e)}`);
    return true;
  });
}

/** Sorted listing of a tree: "path type [-> target]" lines, for whole-tree comparisons. */
export async function listTree(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for (const n of (await readdir(path.join(dir, rel))).sort()) {
    const r = rel === "" ? n : `${rel}/${n}`;
    const st = await lstat(path.join(dir, r));
    if (st.isSymbolicLink()) out.push(`${r} -> ${await readlink(path.join(dir, r))}`);
    else if (st.isDirectory()) {
      out.push(`${r}/`);
      out.push(...(await listTree(dir, r)));
    } else out.push(r);
  }
  return out;
}

/** True when the tests run as root (chown, mknod). */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Skips `t` (and says so) where security.capability cannot be set: without attr or root. */
export async function cannotSetCapabilities(t: TestContext): Promise<boolean> {
  if ((await findTool("setfattr")) !== undefined && process.getuid?.() === 0) return false;
  t.skip("needs attr and root (setting security.capability needs CAP_SETFCAP)");
  return true;
}
